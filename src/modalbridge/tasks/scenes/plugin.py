"""The ``scenes`` task declared to the trunk: SR-BERT text → clip-art scenes on Abstract Scenes v1.1."""

from __future__ import annotations

from modalbridge.core.plugins import DatasetEntry, TaskPlugin, Verb, add_precision_argument


def _scene_arguments(p) -> None:
    p.add_argument("text", nargs="?", default="",
                   help="the scene description (several sentences; not needed with --complete)")
    p.add_argument("--ckpt", required=True, help="SR-BERT .ckpt written by `modalbridge fit --config configs/scenes/…`")
    p.add_argument("--cliparts", help="comma-separated clip-art names to place (e.g. hb0_14s,s_3s,p_8s); default: the "
                                      "clip-art predictor's choice with --predictor, else the clip-arts the text names")
    p.add_argument("--predictor", help="clip-art predictor .ckpt (configs/scenes/world_cliparts.yaml)")
    p.add_argument("--decoding", default=None, help="ss | ro | ho | hc | hc-beam | le (default: the checkpoint's)")
    p.add_argument("--complete", help="a processed scene JSON (one scene, or a split file with --scene N): place "
                                      "--group given the rest of that scene")
    p.add_argument("--scene", type=int, default=0, help="with --complete on a split file: which scene")
    p.add_argument("--group", default="people", help="with --complete: sky | large | people | animals | clothing | "
                                                     "food | toys")
    p.add_argument("--heatmap", help="also draw where this clip-art (a name or a word such as 'dog') could go")
    p.add_argument("--cliparts-dir", help="folder of clip-art PNGs (Abstract Scenes Pngs/; default: the world's)")
    p.add_argument("--picture", default="scene.png", help="where to save the rendered scene (.png or .jpg)")
    add_precision_argument(p)


PLUGIN = TaskPlugin(
    name="scenes",
    doc="text describing spatial relations → 2D clip-art scenes (SR-BERT, Abstract Scenes v1.1)",
    models=("modalbridge.tasks.scenes.models",),
    worlds={"scenes": "modalbridge.tasks.scenes.world:scenes_world"},
    datasets=(DatasetEntry("scenes", check="modalbridge.tasks.scenes.abstract_scenes:check_scenes",
                           prepare="modalbridge.tasks.scenes.abstract_scenes:prepare_scenes",
                           doc="Abstract Scenes v1.1 raw release (Scenes_10020.txt, SimpleSentences, tuples, "
                               "Pngs; prepare: processed JSON splits)"),),
    benchmarks={"scenes": "modalbridge.tasks.scenes.bench:run"},
    demo="modalbridge.tasks.scenes.demo:run_demo",
    verbs=(Verb("scene", "place the clip-arts a text describes on a canvas with a trained SR-BERT, and draw it",
                _scene_arguments, "modalbridge.tasks.scenes.infer:scene_cli"),),
)
