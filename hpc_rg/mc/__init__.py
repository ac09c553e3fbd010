"""Monte Carlo update rules and samplers."""
