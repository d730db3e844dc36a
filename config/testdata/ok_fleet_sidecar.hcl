tracker {
  address     = "10.0.0.5:9010"
  name        = "zope1"
  buffer_file = "/var/lib/tidstorage/sidecar.buffer"
  tls {
    cert_file = "/etc/tidstorage/zope1.crt"
    key_file  = "/etc/tidstorage/zope1.key"
    ca_file   = "/etc/tidstorage/ca.crt"
  }
}
zeo "main" {
  listen   = "127.0.0.1:8100"
  upstream = "zeo1:8100"
  storage "1" { id = "A" }
}
