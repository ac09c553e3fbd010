"""Real-space renormalization-group transforms (:mod:`.blocking`), per-configuration
observables (:mod:`.observables`) and the temperature rescaling of a blocking step
(:mod:`.rescaling`)."""
