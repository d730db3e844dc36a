status_file = ""
log {
  level  = "verbose"
  format = "xml"
}
limits {
  max_frame_size      = "64MB!"
  max_classic_field    = 0.5
  max_zeo_connections = -1
}
classic {
  enabled = "yes"
}
admin {
  enabled = true
  listen  = 9002
}
zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" { data_fs = true }
}
