limits {
  max_frame_size         = "1MiB"
  max_pre_register_frame = "2MiB"
  decode_budget          = "512KiB"
  register_timeout       = "10ms"
}
