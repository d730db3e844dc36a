status_file = "/var/lib/tidstorage/tidstorage.status"
zeo "main" {
  listen   = "10.0.0.5:8100"
  upstream = "unix:/run/zeo1.sock"
  tls {
    cert_file      = "/etc/tidstorage/zeo-proxy.crt"
    client_ca_file = "/etc/tidstorage/zope-ca.crt"
    ca_file        = "/etc/tidstorage/zeo-ca.crt"
  }
  tls {
    cert_file = "/etc/tidstorage/zeo-proxy.crt"
    key_file  = "/etc/tidstorage/zeo-proxy.key"
  }
  upstream_tls {
    cert_file = "/etc/tidstorage/zeo-client.crt"
  }
  storage "1" {}
}
zeo "plain" {
  listen   = "10.0.0.5:8101"
  upstream = "zeo2:8100"
  upstream_tls {
    server_name = ""
  }
  storage "1" {}
}
