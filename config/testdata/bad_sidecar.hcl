status_file = "/var/lib/tidstorage/tidstorage.status"
tracker {
  address       = "10.0.0.5:9010"
  buffer_events = 0
}
zeo "main" {
  upstream = "zeo1:8100"
  storage "1" {}
}
