status_file = "tid.log"
classic {
  allow = ["127.0.0.0/8", "10.0.0.0/33", "localhost", "::1", 10]
}
