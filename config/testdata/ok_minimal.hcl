# No zeo block: a drop-in replacement of the original daemon.
status_file = "tidstorage.status"
