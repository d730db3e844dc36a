status_file = "tid.log"
zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8100"
  storage "1" {}
}
zeo "b" {
  listen   = "0.0.0.0:8101"
  upstream = "localhost:8300"
  storage "1" {}
}
zeo "c" {
  listen   = "localhost:8102"
  upstream = "localhost:8300"
  storage "1" {}
}
