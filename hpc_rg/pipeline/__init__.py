"""The stages (sample, train, upscale, analyze) and the driver that runs them."""
