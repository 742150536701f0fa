"""Every command line of the package: argparse and printing live here, the work in the library."""
