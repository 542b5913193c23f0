from arbiter_ops.cli import main

main()
