"""The weights cards shipped with motion-zoo: one ``ARCH.TAG.yaml`` per checkpoint (schema in ``zoo._cards``)."""
