"""The `rtool` command line (installed as the package `rtool_cli`): parse options, call rtool, print a summary."""
