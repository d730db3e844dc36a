status_file = "tid.log"
admin {
  listen = "127.0.0.1:9001"
}
zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" {}
}
zeo "b" {
  listen   = "0.0.0.0:8100"
  client_address = "zeo-b:8100"
  upstream = "localhost:8300"
  storage "1" {}
}
zeo "c" {
  listen   = "unix:/run/zeo.sock"
  upstream = "localhost:8400"
  storage "1" {}
}
zeo "d" {
  listen   = "unix:/run/zeo.sock"
  upstream = "localhost:8500"
  storage "1" {}
}
