from latentctl.cli import main

main()
