"""``python -m cadenza``: the same command line as the ``cadenza`` script."""

try:
    from cadenza.runtime.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still importing: one line, no traceback
    import sys

    sys.stderr.write("cadenza: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
