"""Face tooling around the recognizers: dlib's packaged model files, detection, landmarks and alignment."""
