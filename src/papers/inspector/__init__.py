"""Inspector: a coarse-to-fine adversarial defence wrapped around a trained face-forgery detector."""
