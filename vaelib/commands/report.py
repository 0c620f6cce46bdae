"""Held-out metrics of a model, and the tables the command line prints."""


def format_metrics(metrics, unit="nats per image; bits_per_dim in bits"):
    """The float entries of `metrics` as a two-column table."""
    rows = [
        (name, value) for name, value in metrics.items() if isinstance(value, float)
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'held-out metric':<{width}}  value ({unit})"]
    lines += [f"{name:<{width}}  {value:10.3f}" for name, value in rows]
    return "\n".join(lines)


def format_video_report(report):
    """The per-frame table of `evaluate_video`, its means, and the active channels."""
    frames = len(report["psnr"])
    identity = "identity" in report
    header = f"{'frame':>5}  {'BCE':>8}  {'PSNR dB':>8}  {'SSIM':>6}  {'KL':>7}"
    lines = [header + (f"  {'identity':>8}" if identity else "")]

    def row(label, values, t=None):
        pick = (lambda name: values[name]) if t is None else (lambda n: values[n][t])
        line = (
            f"{label:>5}  {pick('bce'):8.2f}  {pick('psnr'):8.2f}  "
            f"{pick('ssim'):6.3f}  {pick('kl'):7.2f}"
        )
        return line + (f"  {pick('identity'):8.1%}" if identity else "")

    lines += [row(t + 1, report, t) for t in range(frames)]
    lines.append(row("mean", report["mean"]))
    if identity:
        lines.append(
            "identity: the share of clips whose digits the shipped classifier reads "
            "the same in the reconstruction"
        )
    if "active_units" in report:
        lines.append(
            f"active latent channels: {report['active_units']} of "
            f"{report['latent_channels']} (Var_x E[z] > 0.01, Burda et al. 2016)"
        )
    return "\n".join(lines)


def held_out_metrics(model, data, args):
    """Held-out metrics as a flat dict of floats, and the table to print."""
    from vaelib.metrics import evaluate_images, evaluate_prediction, evaluate_video
    from vaelib.models import ConvLSTMPredictor, copy_last_frame

    if data.test.ndim == 4:
        metrics = evaluate_images(model, data.test, args.iwae_k, seed=args.seed)
        return metrics, format_metrics(metrics)
    report = evaluate_video(model, data.test)
    metrics = {f"reconstruction_{k}": v for k, v in report["mean"].items()}
    if "active_units" in report:
        metrics["active_units"] = report["active_units"]
        metrics["latent_channels"] = report["latent_channels"]
    table = "reconstruction of held-out clips, posterior mean\n" + format_video_report(
        report
    )
    if isinstance(model, ConvLSTMPredictor):
        context, num_frames = model.context_frames, model.data_shape[0]
        target = data.test[:, context:]
        ours = evaluate_prediction(target, model.predict_frames(data.test[:, :context]))
        baseline = evaluate_prediction(
            target, copy_last_frame(data.test[:, :context], num_frames - context)
        )
        metrics.update({f"prediction_{k}": v for k, v in ours.items()})
        metrics.update({f"copy_last_frame_{k}": v for k, v in baseline.items()})
        table += (
            f"\n\nprediction of frames {context + 1}-{num_frames} from frames "
            f"1-{context}\n{'':<16}  {'BCE':>8}  {'PSNR dB':>8}  {'SSIM':>6}  "
            f"{'MSE/frame':>9}" + (f"  {'identity':>8}" if "identity" in ours else "")
        )
        for name, row in (("predictor", ours), ("copy last frame", baseline)):
            table += (
                f"\n{name:<16}  {row['bce']:8.2f}  {row['psnr']:8.2f}  "
                f"{row['ssim']:6.3f}  {row['mse_per_frame']:9.2f}"
            ) + (f"  {row['identity']:8.1%}" if "identity" in row else "")
    return metrics, table
