"""`python -m cli ARGS` is what ./run executes once the environment is ready."""

from cli.program import main

main()
