status_file = "/var/lib/tidstorage/status"
limits {
  max_frame_size         = "32MiB"
  max_pre_register_frame = "16KiB"
  decode_budget          = "96MiB"
  register_timeout       = "20s"
}
zeo "main" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" {}
}
