status_file = "/var/lib/tidstorage/tidstorage.status"
fleet {
  listen = "10.0.0.5:9010"
  tls {
    cert_file      = "/etc/tidstorage/tracker.crt"
    key_file       = "/etc/tidstorage/tracker.key"
    client_ca_file = "/etc/tidstorage/ca.crt"
  }
}
zeo "main" {
  upstream = "zeo1:8100"
  storage "1" { id = "A" }
}
