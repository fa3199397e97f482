"""The ``zenrec`` command line."""
