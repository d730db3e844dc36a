status_file = "/var/lib/tidstorage/tidstorage.status"
# Both sides: clients talk TLS to tidstorage, tidstorage talks TLS to ZEO.
zeo "main" {
  listen   = "10.0.0.5:8100"
  upstream = "zeo1:8100"
  tls {
    cert_file      = "/etc/tidstorage/zeo-proxy.crt"
    key_file       = "/etc/tidstorage/zeo-proxy.key"
    client_ca_file = "/etc/tidstorage/zope-ca.crt"
  }
  upstream_tls {
    ca_file   = "/etc/tidstorage/zeo-ca.crt"
    cert_file = "/etc/tidstorage/zeo-client.crt"
    key_file  = "/etc/tidstorage/zeo-client.key"
  }
  storage "1" {}
}
# Re-originate only (plaintext clients on loopback), with a server name.
zeo "cat" {
  listen   = "127.0.0.1:8101"
  upstream = "10.0.0.9:8100"
  upstream_tls {
    ca_file     = "/etc/tidstorage/zeo-ca.crt"
    server_name = "zeo2.example.com"
  }
  storage "1" { id = "catalog" }
}
# Terminate only, no client certificates.
zeo "third" {
  listen   = "10.0.0.5:8102"
  upstream = "zeo3:8100"
  tls {
    cert_file = "/etc/tidstorage/zeo-proxy.crt"
    key_file  = "/etc/tidstorage/zeo-proxy.key"
  }
  storage "1" {}
}
# Re-originate with the system's roots, plaintext clients from the network:
# warned.
zeo "exposed" {
  listen   = "10.0.0.5:8103"
  upstream = "zeo4:8100"
  upstream_tls {}
  storage "1" {}
}
