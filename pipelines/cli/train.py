"""``pipe train-ae`` and ``pipe reconstruct``."""

from __future__ import annotations

import contextlib

import click

from autoencoder.backends import requested_backend
from autoencoder.config import DEFAULT_LR, KINDS, SAMPLED_ABOVE, AutoencoderConfig, TrainConfig
from autoencoder.model.losses import LOSS_PARAMS, LOSSES, losses_for
from embeddings.store.rundir import RunDir, resolve_model
from pipelines.cli.options import (
    backend_option,
    config_option,
    force_option,
    lock_run,
    model_name_option,
    model_option,
    option_group,
    read_run_option,
    require_run_dir,
    seed_option,
    verbosity,
    verbosity_flags,
)
from pipelines.params import DistributeParams, ReconstructParams

_AE, _TRAIN = AutoencoderConfig, TrainConfig
AE_OPTIONS = ("seq_len", "latent", "vocab_cap", "center", *LOSS_PARAMS, "softmax", "negatives",
              "decoder", "word_dropout", "init_from_vectors")
# --loss: each loss of the registry, the kinds it trains and its line.
LOSS_HELP = ("; ".join(f"{name} ({', '.join(loss.kinds)}): {loss.help}" for name, loss in LOSSES.items())
             + "  [default: the first of its kind: "
             + " / ".join(dict.fromkeys(losses_for(kind)[0] for kind in KINDS)) + "]")


# Architecture options, shared by ``train-ae`` and ``run``.
autoencoder_options = option_group(
    config_option(_AE, "seq_len", help="Tokens per sentence (truncate / right-pad)."),
    config_option(_AE, "latent", help="LSTM units of encoder and decoder."),
    config_option(_AE, "vocab_cap",
                  help="One-hot vocabulary size, PAD and UNK included (so at least "
                       f"{_AE.PARAMS['vocab_cap'].low}); 'none': the whole word2vec "
                       "vocabulary."),
    config_option(_AE, "softmax", show_default=False,
                  help="One-hot training softmax: exact, or sampled over --negatives ids a "
                       "step (scoring is always exact)  [default: sampled above "
                       f"{SAMPLED_ABOVE:,} words, else full]"),
    config_option(_AE, "negatives", metavar="K",
                  help="--softmax sampled: ids drawn a step (log-uniform over the "
                       "frequency-ordered vocabulary, logQ-corrected)."),
    config_option(_AE, "center", "--center/--no-center",
                  help="Embedding kind: subtract the mean word vector before normalising."),
    *(config_option(_AE, param, help=f"--loss {name}: {line}")
      for name, loss in LOSSES.items() for param, line in loss.params.items()),
    config_option(_AE, "decoder",
                  help="Each word from the code alone (repeat: RepeatVector), or from the "
                       "code and the previous word (autoregressive: teacher forcing in "
                       "training, greedy decoding at inference; embedding and onehot)."),
    config_option(_AE, "word_dropout", metavar="SHARE",
                  help="--decoder autoregressive: share of previous words replaced by UNK "
                       "in training, so that the decoder leans on the code."),
    config_option(_AE, "init_from_vectors",
                  help="One-hot kind: start the input projection from the run's word2vec "
                       "vectors (the vector models' pretraining), then train it."),
)


# Optimisation options, shared by ``train-ae`` and ``run``.
training_options = option_group(
    config_option(_TRAIN, "epochs",
                  help="Autoencoder epochs (at most; early stopping may end sooner)."),
    config_option(_TRAIN, "batch_size", help="Global batch size in sentences."),
    config_option(_TRAIN, "optimizer"),
    config_option(_TRAIN, "lr", help="Learning rate  [default: " + ", ".join(
        f"{lr:g} {name}" for name, lr in DEFAULT_LR.items()) + "]"),
    config_option(_TRAIN, "momentum", help="SGD momentum."),
    config_option(_TRAIN, "nesterov", help="Nesterov momentum (SGD)."),
    config_option(_TRAIN, "clipnorm", help="Clip the gradient norm; 0 disables."),
    config_option(_TRAIN, "clip_scope",
                  help="Clip one norm over all gradients (Keras's global_clipnorm) or each "
                       "weight's gradient on its own (Keras's clipnorm)."),
    config_option(_TRAIN, "patience",
                  help="Early stopping: epochs without a better --monitor; 0 never."),
    config_option(_TRAIN, "monitor",
                  help="What early stopping and best.keras follow: the lowest validation "
                       "loss or the highest validation token accuracy."),
    config_option(_TRAIN, "min_seen", metavar="SENTENCES",
                  help="No early stopping before this many sentence-passes in all.  "
                       "[default: none]"),
    config_option(_TRAIN, "max_sentences",
                  help="Train on a seeded subsample of this many sentences."),
    config_option(_TRAIN, "val_sentences",
                  help="Validate each epoch on a seeded subsample of this many sentences; "
                       "'none': on all of them."),
    config_option(_TRAIN, "max_time", metavar="SECONDS",
                  help="Stop after this much training time (validation not counted); the "
                       "epoch in progress ends there.  [default: no limit]"),
    config_option(_TRAIN, "max_seen", metavar="SENTENCES",
                  help="Stop after this many sentence-passes (sentences x passes) in all; "
                       "the epoch in progress ends there.  [default: no limit]"),
    config_option(_TRAIN, "trace_every", metavar="STEPS",
                  help="A row of the step trace (RUN/models/NAME/steps.csv: loss, gradient "
                       "norm, sentences and seconds) every STEPS steps and at each epoch's "
                       "end  [default: 1% of an epoch, at most 50]"),
    config_option(_TRAIN, "eval_every", metavar="STEPS",
                  help="Every STEPS steps and at each epoch's end, add to the trace the "
                       "validation loss with each sentence's own code, with the codes "
                       "swapped between sentences, and the code-free floor  [default: never]"),
    config_option(_TRAIN, "eval_sample", help="Validation sentences that --eval-every scores."),
)


# Where ``train-ae`` runs: one device, mirrored local devices, or a cluster of workers.
distribute_options = option_group(
    config_option(DistributeParams, "strategy",
                  help="tf.distribute strategy (tensorflow backend): one device; "
                       "MirroredStrategy over local GPUs (or --replicas logical CPUs); "
                       "MultiWorkerMirroredStrategy from TF_CONFIG."),
    config_option(DistributeParams, "replicas",
                  help="mirrored: devices to use  [default: every GPU, else 1 CPU]"),
    config_option(_TRAIN, "scale_lr",
                  help="Multiply --lr by the number of replicas (linear scaling rule)."),
    config_option(DistributeParams, "cluster_demo", metavar="N",
                  help="Start N local workers on loopback ports (multi-worker) and wait."),
)


def make_configs(kind, loss, seed, **options):
    """The frozen configs from CLI options (checked, without Keras)."""
    ae = AutoencoderConfig(kind=kind, loss=loss,
                           **{k: options.pop(k) for k in AE_OPTIONS})
    return ae, TrainConfig(seed=seed, **options)


@click.command("train-ae")
@read_run_option
@config_option(_AE, "kind", help="Word2vec vectors in and out; the capped one-hot baseline (softmax); or the "
                   "classic Keras model (tanh LSTM(cap) output, no softmax), kept to show why "
                   "it fails.")
@config_option(_AE, "loss", help=LOSS_HELP)
@model_name_option("--name", help="Model name under RUN/models: letters, digits, '.', '_', '-'  "
                                  "[default: KIND-LOSS]")
@autoencoder_options
@training_options
@distribute_options
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of --name.")
@force_option
@seed_option
@backend_option
@verbosity
def train_ae(run_dir: RunDir, kind: str, loss: str | None, name: str | None, resume: bool,
             force: bool, seed: int, strategy: str, replicas: int | None,
             cluster_demo: int | None, **options) -> None:
    """Train a sentence autoencoder on the run's corpus and word vectors.

    \b
    The embedding kind reads frozen word2vec vectors and writes vectors (cosine, MSE or vMF loss),
    decoded to words by nearest neighbour; the onehot kind is the capped-vocabulary baseline
    with a softmax. Both share the encoder (bidirectional LSTM, directions summed),
    RepeatVector and decoder LSTM. The classic kind is the Keras model that blows up (one-hot
    in, tanh LSTM(cap) out, categorical cross-entropy): a NaN stops it with the event (step,
    loss and gradient norms before it) in state.json. Artifacts go to RUN/models/NAME:
    config.json, vocab.txt, best.keras, last.keras, history.csv (per epoch), steps.csv (the
    step trace, --trace-every), loss.png, state.json.

    \b
    Several devices or hosts: --batch-size stays the global batch. With --strategy
    multi-worker, start the same command on every host, each with its TF_CONFIG; the
    chief (worker 0) writes the run directory, which the others read. --cluster-demo N
    runs such a cluster of N processes on this machine. Distribution is TensorFlow's
    (tf.distribute): --backend jax trains on one device, and checkpoints of either backend
    resume under the other.
    """
    ae_config, train_config = make_configs(kind, loss, seed, **options)
    if cluster_demo or strategy == "multi-worker":
        train_config.check_multi_worker()  # before the workers start, not in each of them
    if cluster_demo:
        return _cluster_demo(cluster_demo, strategy, replicas)
    require_run_dir(run_dir)  # both before importing Keras and starting the backend's runtime
    from autoencoder.backends import current
    from pipelines import train_autoencoder

    name = name or ae_config.default_name
    backend = current()
    distribution = backend.make_strategy(strategy, replicas)  # before any other TensorFlow op
    chief = backend.is_chief(distribution)
    with lock_run(run_dir) if chief else contextlib.nullcontext():
        trainer = train_autoencoder(run_dir, ae_config, train_config, name=name, resume=resume,
                                    force=force, strategy=distribution,
                                    record={"strategy": strategy})
    best = trainer.state_
    if chief:
        figure = (f"validation token accuracy {best.best_val_accuracy:.4f}"
                  if train_config.monitor == "val_token_accuracy" and best.best_val_accuracy
                  is not None else f"validation loss {best.best_val_loss:.4f}")
        click.echo(f"{name}: {best.epoch} epochs, best {figure} at epoch {best.best_epoch} "
                   f"-> {trainer.model_dir}")


def _cluster_demo(workers: int, strategy: str, replicas: int | None) -> None:
    """``--cluster-demo``: this command again in ``workers`` local multi-worker processes."""
    from pipelines.cli.cluster import run_cluster_demo

    if strategy not in ("default", "multi-worker") or replicas:
        raise click.UsageError("--cluster-demo runs --strategy multi-worker workers")
    if requested_backend() != "tensorflow":
        raise click.UsageError("--cluster-demo needs --backend tensorflow (tf.distribute)")
    run_cluster_demo(workers, ["train-ae", *_forwarded_options()])


def _forwarded_options() -> list[str]:
    """This command's options as command-line flags, less the cluster ones: what each worker
    of ``--cluster-demo`` is started with."""
    ctx = click.get_current_context()
    args = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if (not isinstance(param, click.Option) or param.name in ("cluster_demo", "strategy", "replicas")
                or (value is None and param.default is None)):
            continue
        if value is None:  # given as none, over a default that is not
            args += [param.opts[0], "none"]
        elif param.is_flag:
            args += [param.opts[0]] if value else param.secondary_opts[:1]
        else:
            args += [param.opts[0], str(value)]
    return args + verbosity_flags()


@click.command()
@read_run_option
@model_option
@config_option(ReconstructParams, "top_k", help="Neighbours to show per position.")
@click.argument("sentence")
@backend_option
@verbosity
def reconstruct(run_dir: RunDir, name: str | None, top_k: int, sentence: str) -> None:
    """Autoencode SENTENCE with a trained model and print what comes back.

    Prints the tokens, their ids (UNK marked with *), and the decoded reconstruction; with
    --top-k K, the K best candidates per position with their scores.
    """
    name = resolve_model(run_dir, name)  # before starting Keras
    from autoencoder import UNK_ID
    from pipelines import reconstruct_sentence

    result = reconstruct_sentence(run_dir, sentence, name=name, top_k=top_k)
    click.echo(f"model:  {result['model']}")
    click.echo("tokens: " + " ".join(result["tokens"]))
    click.echo("ids:    " + " ".join(f"{i}{'*' if i == UNK_ID else ''}" for i in result["ids"]))
    click.echo("output: " + " ".join(result["reconstruction"]))
    if top_k > 1:
        for position, candidates in enumerate(result["candidates"]):
            shown = "  ".join(f"{w} {s:.3f}" for w, s in candidates)
            click.echo(f"  {position:3d} {result['tokens'][position]:>15}: {shown}")
