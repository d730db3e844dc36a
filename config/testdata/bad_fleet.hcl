status_file = "/var/lib/tidstorage/tidstorage.status"
fleet {
  listen = "10.0.0.5:9010"
}
tracker {
  address = "10.0.0.5:9010"
}
zeo "main" {
  listen   = "127.0.0.1:8100"
  upstream = "zeo1:8100"
  storage "1" {}
}
zeo "other" {
  upstream = "zeo2:8100"
  storage "1" {}
}
