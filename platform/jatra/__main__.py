from jatra.cli import main

main()
