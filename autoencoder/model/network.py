"""The sequence autoencoder: BiLSTM encoder -> RepeatVector -> LSTM decoder -> per-step output.

Two kinds share every layer but the ends, so their comparison is fair:

* ``embedding``: reads the frozen, unit-normalised word2vec vectors of the tokens and writes one
  ``dim``-vector per position (linear output), trained with a vector loss (cosine, MSE or vMF:
  :data:`autoencoder.model.losses.LOSSES`) and decoded to words by nearest-neighbour search.
* ``onehot``: the baseline done right, over a capped vocabulary. Its input is the one-hot row
  times a trainable (cap x dim) matrix, computed as a lookup; its output a softmax over the cap,
  trained with sparse categorical cross-entropy and decoded by argmax.
* ``classic``: the seed's model exactly as written, kept to show why it fails: one-hot rows into
  the encoder, ``LSTM(cap)`` as decoder and output (tanh, no softmax, no Dense head), trained
  with Keras's ``categorical_crossentropy``, which divides the outputs by their sum (it expects
  probabilities) and clips the quotient to [1e-7, 1 - 1e-7]; decoded by argmax.

The decoder (``AutoencoderConfig.decoder``) either reads the code alone at every position
(``repeat``: RepeatVector, the question's model) or the code and the input vector of the previous
word (``autoregressive``: the model's second input ``previous``, (batch, width, dim), the shifted
input vectors, a zero vector at t = 0; teacher forcing in training, and at inference
:meth:`SentenceAutoencoder.generate` feeds back the word it decoded, greedily). The code stays
the only way from the encoder to the decoder: no attention.

Only Keras built-in layers are used, so saved models load with ``safe_mode=True`` and no custom
objects. The saved model is ``seq_len`` wide; :meth:`SentenceAutoencoder.at_width` runs the very
same layers (weights shared, nothing more to save) on narrower batches, whose outputs at real
tokens are those of the full width: the encoder is masked and the decoder is causal.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from autoencoder.config import AutoencoderConfig
from autoencoder.data.batches import eval_rows
from autoencoder.data.vocab import PAD_ID, UNK_ID, Vocabulary
from autoencoder.model.decode import NearestNeighbourDecoder, top_k
from autoencoder.model.losses import LOSSES, l2_normalize
from autoencoder.model.sampled import LogUniformSampler, sampled_softmax_ce
from embeddings.store.errors import SeqaeError

# The UNK input/target vector: a fixed random unit vector, far from every real word in high dims.
UNK_VECTOR_SEED = 20_000


def unit_vectors(vectors: np.ndarray, center: bool = True) -> np.ndarray:
    """The input/target table of the embedding kind, shape (V + 2, dim) float32.

    Row 0 (PAD) is zero, row 1 (UNK) a fixed random unit vector, rows 2.. the word vectors (minus
    their mean if ``center``) scaled to unit length.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    table = np.empty((len(vectors) + 2, vectors.shape[1]), dtype=np.float32)
    table[PAD_ID] = 0.0
    unk = np.random.default_rng(UNK_VECTOR_SEED).standard_normal(vectors.shape[1])
    table[UNK_ID] = unk / np.linalg.norm(unk)
    words = table[2:]  # filled in place: at 100k x 2000 every copy is 800 MB
    if center:
        np.subtract(vectors, vectors.mean(axis=0, dtype=np.float64).astype(np.float32), out=words)
    else:
        words[...] = vectors
    words /= np.maximum(np.linalg.norm(words, axis=1, keepdims=True), 1e-12)
    return table


def vocabulary_vectors(vocab: Vocabulary, keys: list[str], vectors: np.ndarray) -> np.ndarray:
    """(len(vocab), dim) float32: each id's row of :func:`unit_vectors` (centred) for word
    vectors ``vectors`` whose rows are the words ``keys``; PAD's row is zero, and UNK and any
    word without a vector get UNK's fixed random row. The one-hot kind's ``init_from_vectors``."""
    table = unit_vectors(vectors, center=True)
    index = {word: row for row, word in enumerate(keys)}
    rows = np.array([PAD_ID, UNK_ID] + [index.get(word, UNK_ID - 2) + 2
                                        for word in vocab.words[2:]], dtype=np.int64)
    return table[rows]


def build_model(config: AutoencoderConfig, vocab_size: int, dim: int) -> keras.Model:
    """The Keras model; input (batch, seq_len) ids for onehot or (batch, seq_len, dim) vectors,
    and for the autoregressive decoder also ``previous``, (batch, seq_len, dim) vectors.

    Output: (batch, seq_len, dim) linear vectors (embedding), (batch, seq_len, vocab_size)
    probabilities (onehot) or tanh activations in [-1, 1] (classic).
    """
    seq_len, latent = config.seq_len, config.latent
    if config.kind == "embedding":
        inputs = keras.Input((seq_len, dim), name="vectors")
        # PAD rows are exactly zero; no real word vector is, since all are unit length.
        x = keras.layers.Masking(0.0, name="mask")(inputs)
    else:
        inputs = keras.Input((seq_len,), dtype="int32", name="ids")
        # classic: the one-hot rows themselves (a frozen identity lookup, as the seed fed them).
        projection = (dict(output_dim=dim) if config.kind == "onehot" else
                      dict(output_dim=vocab_size, embeddings_initializer="identity",
                           trainable=False))
        x = keras.layers.Embedding(vocab_size, mask_zero=True, name="onehot_projection",
                                   **projection)(inputs)
    code = keras.layers.Bidirectional(keras.layers.LSTM(latent), merge_mode="sum", name="encoder")(x)
    x = keras.layers.RepeatVector(seq_len, name="repeat")(code)
    if config.autoregressive:
        previous = keras.Input((seq_len, dim), name="previous")
        x = keras.layers.Concatenate(name="with_previous")([x, previous])
        inputs = [inputs, previous]
    if config.kind == "classic":  # no head: the decoder's tanh is the output
        x = keras.layers.LSTM(vocab_size, return_sequences=True, name="decoder")(x)
        outputs = keras.layers.Identity(name="output")(x)
    else:
        x = keras.layers.LSTM(latent, return_sequences=True, name="decoder")(x)
        head = (keras.layers.Dense(dim, name="vector") if config.kind == "embedding" else
                keras.layers.Dense(vocab_size, activation="softmax", name="softmax"))
        outputs = keras.layers.TimeDistributed(head, name="output")(x)
    return keras.Model(inputs, outputs, name=f"seqae_{config.kind}")


class SentenceAutoencoder:
    """A Keras model with its vocabulary, input table and decoder.

    Parameters
    ----------
    config : the architecture.
    vocab : the model's vocabulary (the word2vec one for ``embedding``, the capped one for onehot).
    vectors : (len(vocab) - 2, dim) word vectors in vocabulary order; required for ``embedding``,
        and for ``onehot`` gives only the input width ``dim``.
    model : an existing Keras model (loaded from a checkpoint); built fresh when None.
    seed : initialisation seed of a freshly built model (Python, NumPy and TensorFlow).
    """

    def __init__(self, config: AutoencoderConfig, vocab: Vocabulary, vectors: np.ndarray,
                 model: keras.Model | None = None, seed: int = 0):
        self.config = config
        self.vocab = vocab
        self.dim = int(vectors.shape[1])
        self.softmax = config.softmax_for(len(vocab))
        self.sampler = (LogUniformSampler(len(vocab), config.negatives)
                        if self.softmax == "sampled" else None)
        self.loss = LOSSES[config.loss]
        if self.dim < self.loss.min_dim:
            raise SeqaeError(f"--loss {config.loss} needs word vectors of at least "
                             f"{self.loss.min_dim} dimensions; these have {self.dim}")
        if config.kind == "embedding":
            if len(vectors) + 2 != len(vocab):
                raise SeqaeError(f"vectors have {len(vectors)} rows but the vocabulary "
                                 f"{len(vocab) - 2} words")
            self.table = unit_vectors(vectors, config.center)
            # A variable, not a graph constant: the table can be hundreds of MB.
            self.table_var = keras.Variable(self.table, trainable=False, name="word_vectors")
            self.decoder = NearestNeighbourDecoder(self.table, exclude=(PAD_ID, UNK_ID),
                                                   unit_rows=True)
        if model is None:
            keras.utils.set_random_seed(seed)
            model = build_model(config, len(vocab), self.dim)
        self.model = model

    def init_projection(self, table: np.ndarray) -> None:
        """Set the one-hot input projection to ``table``, (len(vocab), dim) (``init_from_vectors``:
        :func:`vocabulary_vectors`)."""
        layer = self.model.get_layer("onehot_projection")
        if table.shape != tuple(layer.embeddings.shape):
            raise SeqaeError(f"an input table of shape {table.shape} does not fit the one-hot "
                             f"projection's {tuple(layer.embeddings.shape)}")
        layer.embeddings.assign(table)

    @property
    def eval_rows(self) -> int:
        """Sentences per batch when scoring, bounded by the size of the model's output."""
        return eval_rows(self.config.seq_len, self.dim if self.config.kind == "embedding"
                         else len(self.vocab))

    @property
    def lookup_variables(self) -> list:
        """Variables read outside the Keras model: the word-vector table (embedding kind)."""
        return [self.table_var] if self.config.kind == "embedding" else []

    @property
    def model(self) -> keras.Model:
        """The ``seq_len``-wide Keras model (the one saved and loaded)."""
        return self._model

    @model.setter
    def model(self, model: keras.Model) -> None:
        self._model = model
        self._at_width = {self.config.seq_len: model}
        self._states_at_width: dict[int, keras.Model] = {}  # decoder states, for sampled softmax
        self._code_models: dict[str, keras.Model] = {}  # encoder and code_decoder, built on use

    def at_width(self, width: int) -> keras.Model:
        """The model for (batch, ``width``) inputs, ``width <= seq_len``: the same layer objects
        (so the same weights) with a ``RepeatVector(width)``, built once per width and never
        saved. Its outputs at the first ``width`` positions are those of :attr:`model`."""
        if width not in self._at_width:
            if not 1 <= width <= self.config.seq_len:
                raise ValueError(f"width {width} is not in 1..{self.config.seq_len}")
            inputs, code = self._encoder_graph(width)
            previous = self._previous_input(width)
            outputs = self._decoder_graph(code, width, previous)
            self._at_width[width] = keras.Model(inputs if previous is None else [inputs, previous],
                                                outputs, name=f"{self.model.name}_{width}")
        return self._at_width[width]

    def step_model(self, width: int) -> keras.Model:
        """What the training step runs on a (batch, ``width``) batch: :meth:`at_width`, or with
        sampled softmax the same layers up to the decoder's states (batch, width, latent)."""
        if self.sampler is None:
            return self.at_width(width)
        if width not in self._states_at_width:
            self.at_width(width)  # checks the width
            inputs, code = self._encoder_graph(width)
            previous = self._previous_input(width)
            states = self._decoder_states(code, width, previous)
            self._states_at_width[width] = keras.Model(
                inputs if previous is None else [inputs, previous], states)
        return self._states_at_width[width]

    def step_inputs(self, key: tuple[int, ...], rows: int) -> tuple[np.ndarray, ...]:
        """The arrays a training step takes besides the id batch, drawn from the seed ``key``
        (the run's seed, the epoch and the step, so that a resumed run draws the same): with
        sampled softmax the step's negatives and their ``log(K q)``; with word dropout a
        (``rows``, seq_len) float32 mask, 0 where the previous word is replaced by UNK."""
        rng = np.random.default_rng(key)
        drawn = () if self.sampler is None else self.sampler.draw(rng)
        if self.config.word_dropout:
            keep = rng.random((rows, self.config.seq_len)) >= self.config.word_dropout
            drawn = (*drawn, keep.astype(np.float32))
        return drawn

    def step_loss(self, ids, *step_inputs):
        """The training loss at each position of a (batch, width) id batch, shape (batch, width):
        :meth:`token_loss` of the model's outputs (teacher-forced for the autoregressive
        decoder, with word dropout), or the sampled softmax cross-entropy over
        :meth:`step_inputs`' negatives. Padding positions are the caller's to mask."""
        keep = step_inputs[-1] if self.config.word_dropout else None
        width = ids.shape[1]
        if keep is not None:  # the batch's rows (a short last batch, a replica's share)
            keep = keep[: ops.shape(ids)[0], :width]
        outputs = self.step_model(width)(self.model_inputs(ids, keep), training=True)
        if self.sampler is None:
            return self.token_loss(ids, outputs)
        dense = self.model.get_layer("output").layer
        return sampled_softmax_ce(outputs, dense.kernel, dense.bias, ids, *step_inputs[:2])

    def _encoder_graph(self, width: int | None) -> tuple[keras.KerasTensor, keras.KerasTensor]:
        """A (batch, ``width``) input (None: any width) and the code the trained layers make
        of it."""
        layer = self.model.get_layer
        if self.config.kind == "embedding":
            inputs = keras.Input((width, self.dim), name="vectors")
            x = layer("mask")(inputs)
        else:
            inputs = keras.Input((width,), dtype="int32", name="ids")
            x = layer("onehot_projection")(inputs)
        return inputs, layer("encoder")(x)

    def _previous_input(self, width: int | None) -> keras.KerasTensor | None:
        """The autoregressive decoder's second input, (batch, ``width``, dim); None for repeat."""
        if not self.config.autoregressive:
            return None
        return keras.Input((width, self.dim), name="previous")

    def _decoder_states(self, code, width: int, previous=None):
        """The trained decoder LSTM's (batch, ``width``, units) states for ``code`` (and, for the
        autoregressive decoder, the ``previous`` words' vectors)."""
        layer = self.model.get_layer
        x = keras.layers.RepeatVector(width, name="repeat")(code)
        if previous is not None:
            x = layer("with_previous")([x, previous])
        return layer("decoder")(x)

    def _decoder_graph(self, code, width: int, previous=None):
        """The trained decoder's ``width`` per-position outputs for ``code`` (and ``previous``)."""
        return self.model.get_layer("output")(self._decoder_states(code, width, previous))

    @property
    def encoder(self) -> keras.Model:
        """(batch, width) inputs of any width <= ``seq_len`` -> (batch, latent) codes: the
        trained input layer and encoder, weights shared. The code is the sum of the two
        directions' last states (masked, so padding does not change it)."""
        if "encoder" not in self._code_models:
            inputs, code = self._encoder_graph(None)
            self._code_models["encoder"] = keras.Model(inputs, code,
                                                       name=f"{self.model.name}_encoder")
        return self._code_models["encoder"]

    @property
    def code_decoder(self) -> keras.Model:
        """(batch, latent) codes -> the ``seq_len``-wide outputs of the trained RepeatVector,
        decoder and output head, weights shared; with the autoregressive decoder it takes the
        previous words' vectors too (teacher forcing: :meth:`decode_codes` generates instead)."""
        if "code_decoder" not in self._code_models:
            code = keras.Input((self.config.latent,), name="code")
            previous = self._previous_input(self.config.seq_len)
            self._code_models["code_decoder"] = keras.Model(
                code if previous is None else [code, previous],
                self._decoder_graph(code, self.config.seq_len, previous),
                name=f"{self.model.name}_code_decoder")
        return self._code_models["code_decoder"]

    def encode(self, ids: np.ndarray) -> np.ndarray:
        """Codes of a (batch, width) int32 id batch, width <= ``seq_len``, right-padded with
        PAD: shape (batch, latent) float32. Padding does not change a code, so a sentence gets
        the same code in a batch of any width (up to float rounding, ~1e-6)."""
        return np.asarray(self.encoder.predict_on_batch(self.inputs(ids)), dtype=np.float32)

    def decoder_outputs(self, codes, ids=None):
        """The decoder's (batch, seq_len, out) outputs for (batch, latent) ``codes`` (NumPy):
        for the repeat decoder those of the code alone; for the autoregressive one, with ``ids``
        (batch, seq_len), teacher-forced on those words (what its loss scores), else generated
        greedily."""
        if not self.config.autoregressive:
            return np.asarray(self.code_decoder.predict_on_batch(codes))
        if ids is None:
            return ops.convert_to_numpy(self.generate(ops.convert_to_tensor(codes),
                                                      self.config.seq_len))
        return np.asarray(self.code_decoder.predict_on_batch([codes, self.previous(ids)]))

    def decode_codes(self, codes: np.ndarray, lengths: np.ndarray | None = None,
                     batch_size: int | None = None) -> list[list[str]]:
        """The words the decoder writes from each of (N, latent) ``codes``, decoded as
        reconstructions are (:meth:`decode`: nearest neighbour or argmax, the autoregressive
        decoder greedily, word by word), ``batch_size`` codes at a time.

        ``lengths`` : (N,) words to read per code, 1 to ``seq_len`` (the model has no end of
            sentence, so the length is the caller's); None reads all ``seq_len``.
        """
        codes = np.asarray(codes, dtype=np.float32).reshape(-1, self.config.latent)
        lengths = (np.full(len(codes), self.config.seq_len) if lengths is None
                   else np.clip(np.asarray(lengths), 1, self.config.seq_len))
        sentences, batch_size = [], batch_size or self.eval_rows
        for start in range(0, len(codes), batch_size):
            outputs = self.decoder_outputs(codes[start:start + batch_size])
            top = self.decode(np.asarray(outputs))[0][..., 0]
            sentences += [self.vocab.decode(row[:n])
                          for row, n in zip(top, lengths[start:start + batch_size])]
        return sentences

    def __call__(self, ids, training: bool = False):
        """Outputs for a (batch, width) id batch, width <= seq_len: (batch, width, dim) vectors
        or (batch, width, vocab) probabilities; the autoregressive decoder teacher-forced on
        ``ids`` (its training and loss; :meth:`reconstruct` is what it writes on its own)."""
        return self.at_width(ids.shape[1])(self.model_inputs(ids), training=training)

    def reconstruct(self, ids):
        """What the model writes for a (batch, width) id batch, traceable (the compiled scoring
        step runs it): the outputs of :meth:`__call__` for the repeat decoder; for the
        autoregressive one, :meth:`generate` from the batch's codes."""
        if not self.config.autoregressive:
            return self(ids)
        return self.generate(self.encoder(self.inputs(ids)), ids.shape[1])

    def generate(self, codes, width: int):
        """Greedy decoding, traceable: from (batch, latent) ``codes``, ``width`` steps of the
        decoder LSTM's cell, each fed the code and the input vector of the word decoded at the
        step before (PAD's vector first, as in training), that word chosen by
        :meth:`feedback_ids`. Returns
        (batch, width, out) outputs."""
        layer = self.model.get_layer
        cell, head = layer("decoder").cell, layer("output").layer
        batch = ops.shape(codes)[0]
        zeros = ops.zeros((batch, self.config.latent), dtype=codes.dtype)

        def step(carry, _):
            h, c, previous, _ = carry
            # as the model's with_previous layer joins them: the code, then the previous word
            state, (h, c) = cell(ops.concatenate([codes, previous], axis=-1), [h, c])
            output = head(state)
            carry = (h, c, self._input_vectors(self.feedback_ids(output)), output)
            return carry, carry  # Keras's TensorFlow scan wants outputs shaped as the carry

        width_out = self.dim if self.config.kind == "embedding" else len(self.vocab)
        begin = self._input_vectors(ops.full((batch,), PAD_ID, dtype="int32"))  # as previous()
        start = (zeros, zeros, ops.cast(begin, codes.dtype),
                 ops.zeros((batch, width_out), dtype=codes.dtype))
        _, (_, _, _, outputs) = ops.scan(step, start, length=width)
        return ops.transpose(outputs, (1, 0, 2))

    def feedback_ids(self, outputs):
        """The (...) ids greedy decoding feeds back for (..., out) outputs, traceable: the argmax
        (onehot), or the nearest input vector by cosine with PAD left out (embedding). UNK is
        kept, unlike in :meth:`decode`: the decoder saw UNK's vector after every unknown word in
        training, and feeding it another word's derails what follows."""
        if self.config.kind == "embedding":
            scores = ops.matmul(l2_normalize(outputs), ops.transpose(self.table_var))
            pad = np.zeros(len(self.vocab), dtype=np.float32)
            pad[PAD_ID] = -np.inf
            return ops.argmax(scores + ops.convert_to_tensor(pad, dtype=scores.dtype), axis=-1)
        return ops.argmax(outputs, axis=-1)

    def _input_vectors(self, ids):
        """The input vectors of (...) ids, traceable: the unit table (embedding kind) or the
        trained one-hot projection's rows."""
        if self.config.kind == "embedding":
            return ops.take(self.table_var, ids, axis=0)
        return ops.take(self.model.get_layer("onehot_projection").embeddings, ids, axis=0)

    def inputs(self, ids):
        """Encoder input for a (batch, width) id batch, looked up inside the compiled step."""
        return self._input_vectors(ids) if self.config.kind == "embedding" else ids

    def previous(self, ids, keep=None):
        """The autoregressive decoder's input for a (batch, width) id batch: the vector of word
        t-1 at position t, a zero vector at t = 0 (PAD's row: zero in the unit table, and for
        the onehot kind a learned start vector), and UNK's where ``keep`` (batch, width) is 0
        (word dropout)."""
        ids = ops.convert_to_tensor(ids, dtype="int32")
        shifted = ops.pad(ids[:, :-1], ((0, 0), (1, 0)), constant_values=PAD_ID)
        if keep is not None:
            shifted = ops.where(ops.cast(keep, "bool"), shifted, ops.full_like(shifted, UNK_ID))
        return self._input_vectors(shifted)

    def model_inputs(self, ids, keep=None):
        """The Keras model's input for a (batch, width) id batch: :meth:`inputs`, and for the
        autoregressive decoder :meth:`previous` beside it."""
        if not self.config.autoregressive:
            return self.inputs(ids)
        return [self.inputs(ids), self.previous(ids, keep)]

    def token_loss(self, ids, outputs):
        """Per-position loss, shape (batch, width); padding positions are the caller's to mask."""
        # An autoencoder's targets are its inputs: unit word vectors (embedding kind) or ids.
        return self.loss.token(outputs, self.inputs(ids), self.config)

    def decode(self, outputs: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ids and scores per position: shapes (batch, seq_len, k).

        Embedding kind: cosine nearest neighbours over the vocabulary (PAD and UNK excluded).
        Onehot and classic kinds: the ``k`` highest outputs (UNK included: the baseline may say
        "unknown").
        """
        flat = outputs.reshape(-1, outputs.shape[-1])
        if self.config.kind == "embedding":
            ids, scores = self.decoder.kneighbors(flat, k)
        else:
            ids, scores = top_k(flat, min(k, flat.shape[1]))
        return ids.reshape(*outputs.shape[:2], k), scores.reshape(*outputs.shape[:2], k)
