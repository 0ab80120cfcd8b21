from edgert.cli.main import entry

entry()
