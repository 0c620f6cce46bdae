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
    """The per-frame table of `evaluate_video`, then its means."""
    frames = len(report["psnr"])
    lines = [f"{'frame':>5}  {'BCE':>8}  {'PSNR dB':>8}  {'SSIM':>6}  {'KL':>7}"]
    for t in range(frames):
        lines.append(
            f"{t + 1:>5}  {report['bce'][t]:8.2f}  {report['psnr'][t]:8.2f}  "
            f"{report['ssim'][t]:6.3f}  {report['kl'][t]:7.2f}"
        )
    mean = report["mean"]
    lines.append(
        f"{'mean':>5}  {mean['bce']:8.2f}  {mean['psnr']:8.2f}  {mean['ssim']:6.3f}  "
        f"{mean['kl']:7.2f}"
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
            f"{'MSE/frame':>9}"
        )
        for name, row in (("predictor", ours), ("copy last frame", baseline)):
            table += (
                f"\n{name:<16}  {row['bce']:8.2f}  {row['psnr']:8.2f}  "
                f"{row['ssim']:6.3f}  {row['mse_per_frame']:9.2f}"
            )
    return metrics, table
