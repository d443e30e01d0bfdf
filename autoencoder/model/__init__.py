"""The network: the sentence autoencoder, its losses and nearest-neighbour decoding."""
