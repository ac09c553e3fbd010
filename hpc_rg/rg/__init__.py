"""Real-space renormalization-group transforms (blocking) and the temperature flow."""
