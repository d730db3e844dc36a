classic {
  enabled = false
}
admin {
  listen = "127.0.0.1:0"
}
limits {
  max_frame_size           = 1048576
  max_classic_field        = "4KiB"
  max_classic_count        = 50
  max_zeo_connections      = 0
}
