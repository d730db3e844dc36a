status_file = "/var/lib/tidstorage/tidstorage.status"
fleet {
  listen = "127.0.0.1:9010"
}
zeo "main" {
  upstream = "zeo1:8100"
  tls {
    cert_file = "/etc/tidstorage/zeo-proxy.crt"
    key_file  = "/etc/tidstorage/zeo-proxy.key"
  }
  upstream_tls {
    ca_file = "/etc/tidstorage/zeo-ca.crt"
  }
  storage "1" { id = "A" }
}
