status_file = "tid.log"
logging {
  level = "debug"
}
zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storages "1" {}
}
