"""Data augmentations: waveform augmentations of CLAR and SoundCLR (`bioclass.augment.wave`)
and the spectrogram views of contrastive pretraining (`bioclass.augment.views`).

Submodules are imported explicitly by their users; this package imports none of them.
"""
