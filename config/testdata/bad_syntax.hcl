status_file = "tid.log"
zeo "a" {
  listen = "localhost:8100"
