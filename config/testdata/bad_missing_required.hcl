status_file = "tid.log"
zeo "a" {
  listen = "localhost:8100"
  storage "1" {}
}
zeo "b" {
  upstream = "localhost:8300"
}
