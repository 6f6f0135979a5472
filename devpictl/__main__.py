from devpictl.cli import main

main()
