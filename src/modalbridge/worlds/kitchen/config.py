"""What shapes a kitchen world and what names it: :class:`KitchenWorldConfig` (sizes, counts, difficulty, and
their validation), the world's vocabulary (EPIC columns, verbs and nouns, SSv2 templates) and
:func:`config_hash`, the cache key of (world version, config, seed)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

WORLD_VERSION = 3  # file-format version (cache key); v2 added the detections file, v3 the few-shot lists

#: Columns of EPIC_100_{train,validation}.csv, in the real order.
EK_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
              "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
              "noun_class", "all_nouns", "all_noun_classes")

#: Real SSv2 templates → the relative motion that defines them in this world.
SSV2_TEMPLATES: dict[str, str] = {
    "Moving [something] from left to right": "left_to_right",
    "Moving [something] from right to left": "right_to_left",
    "Putting [something] into [something]": "into",
    "Taking [something] out of [something]": "out_of",
    "Pushing [something] so that it falls off the table": "push_off",
    "Moving [something] closer to [something]": "closer",
    "Moving [something] away from [something]": "away",
    "Pretending to pick [something] up": "pretend_pick",
    "Turning the camera left while filming [something]": "camera_left",
    "Turning the camera right while filming [something]": "camera_right",
    "Turning [something] upside down": "turn_over",
    "Pretending to turn [something] upside down": "pretend_turn",
}
#: The eight templates of the default world: each is told apart by its boxes alone. The other four give
#: boxes that an earlier template also gives, so only the pixels tell them apart (as for many real SSv2
#: template pairs): camera turns (the hand holds the object while the whole scene pans: boxes as in moving it
#: left→right / right→left) and turning upside down vs pretending to (the object's underside shows).
MOTION_TEMPLATES: tuple[str, ...] = tuple(SSV2_TEMPLATES)[:8]
#: The templates of the layouts world: the eight plus the camera turns.
CAMERA_TEMPLATES: tuple[str, ...] = tuple(SSV2_TEMPLATES)[:10]

#: EPIC verb key → motion pattern (see the package docstring).
_EK_VERBS = ("take", "put", "wash", "open", "close", "cut")
#: EPIC noun key → (shape, radius in px at 96 px frame height).
EK_NOUNS: dict[str, tuple[str, float]] = {
    "spoon": ("spoon", 12.0), "plate": ("plate", 12.0), "cupboard": ("cupboard", 13.0),
    "knife": ("knife", 12.0), "lid": ("lid", 12.0), "drawer": ("drawer", 12.0),
    "onion": ("onion", 10.5), "potato": ("potato", 11.0),
}


@dataclass(frozen=True)
class KitchenWorldConfig:
    """Everything that shapes the world (sizes, counts, difficulty). The defaults generate in about 20 s
    with 2 worker processes on 2 idle cores (17 s measured; ~140 MB on disk, most of it flow JPEGs).

    EPIC-KITCHENS-100 part:
        width, height: frame size of every EPIC video (even). fps / participant_fps: frame rate, per
        participant override (P02 records at 25 fps to exercise per-video rates). train_videos / val_videos:
        ``PXX_1YY`` ids, disjoint; train_segments / val_segments are spread evenly over them, each video
        holding consecutive segments of ``segment_seconds`` separated by gaps of ``gap_seconds``.
        unseen_participants: validation-only participants (listed in the unseen csv). verbs / nouns: EPIC keys
        (subsets of take/put/wash/open/close/cut and spoon/plate/cupboard/knife/lid/drawer/onion/potato).
        class_temperature: class frequencies follow the real counts raised to this power (0 = uniform).
        label_noise: fraction of train rows whose annotation is replaced by a narration of another verb (the
        video keeps the true action; see ``world_truth.csv``). occlusion_prob: fraction of segments with a
        static occluder in front of the object. object_contrast: object opacity over the background.
        noise_std: per-frame pixel noise. clutter: static background blobs per kitchen. ek_novel_colours:
        validation videos drawn with the novel noun palette: ``"unseen"`` (videos of unseen participants),
        ``"validation"`` (all) or ``"none"``. tail_fraction: tail csvs list the rarest train classes holding at
        most this fraction of the train instances (at least one class). audio_rate: AAC sample rate (mono).
        audio_noun_level / audio_noise_level: amplitude of the noun tone and of the background noise.
        flow_bound / flow_jpeg_quality: flow quantisation bound (pixels) and JPEG quality.

    Something-Else part:
        ss_train_clips / ss_val_clips, ss_fps, ss_height, ss_widths (each clip picks one), ss_seconds (clip
        length), ss_templates (class id = index in the sorted template list), ss_spurious (probability that a
        train clip uses its template's favourite set-A object), ss_label_noise, ss_distractor_prob (static,
        unannotated extra object in one-object clips), ss_dirty_box_prob, ss_empty_frame_prob, ss_noise_std,
        ss_clutter (static unannotated blobs on each table: scene texture that shows camera turns).
    """

    # -- EPIC-KITCHENS-100 part
    width: int = 128
    height: int = 96
    fps: float = 30.0
    participant_fps: tuple[tuple[str, float], ...] = (("P02", 25.0),)
    train_videos: tuple[str, ...] = ("P01_101", "P01_102", "P01_103", "P02_101", "P02_102", "P02_103")
    val_videos: tuple[str, ...] = ("P01_104", "P01_105", "P18_101", "P18_102")
    unseen_participants: tuple[str, ...] = ("P18",)
    train_segments: int = 300
    val_segments: int = 150
    segment_seconds: tuple[float, float] = (1.2, 2.0)
    gap_seconds: tuple[float, float] = (0.2, 0.5)
    verbs: tuple[str, ...] = _EK_VERBS
    nouns: tuple[str, ...] = tuple(EK_NOUNS)
    class_temperature: float = 0.5
    label_noise: float = 0.0
    occlusion_prob: float = 0.25
    object_contrast: float = 0.8
    noise_std: float = 4.0
    clutter: int = 4
    ek_novel_colours: str = "unseen"
    tail_fraction: float = 0.2
    audio_rate: int = 16000
    audio_noun_level: float = 0.05
    audio_noise_level: float = 0.01
    flow_bound: float = 20.0
    flow_jpeg_quality: int = 90
    # -- Something-Something-V2 / Something-Else part
    ss_train_clips: int = 240
    ss_val_clips: int = 120
    ss_fps: int = 12
    ss_height: int = 96
    ss_widths: tuple[int, ...] = (128, 160)
    ss_seconds: tuple[float, float] = (2.0, 3.0)
    ss_templates: tuple[str, ...] = MOTION_TEMPLATES
    ss_spurious: float = 0.7
    ss_label_noise: float = 0.0
    ss_distractor_prob: float = 0.5
    ss_dirty_box_prob: float = 0.02
    ss_empty_frame_prob: float = 0.03
    ss_noise_std: float = 4.0
    ss_clutter: int = 0

    def __post_init__(self) -> None:
        problems = []
        sizes = [("width", self.width), ("height", self.height), ("ss_height", self.ss_height),
                 *((f"ss_widths[{i}]", w) for i, w in enumerate(self.ss_widths))]
        for name, value in sizes:
            if value < 16 or value % 2:
                problems.append(f"{name} must be an even number ≥ 16 (H.264/VP9 4:2:0), got {value}")
        unknown = sorted(set(self.verbs) - set(_EK_VERBS)) + sorted(set(self.nouns) - set(EK_NOUNS))
        if unknown:
            problems.append(f"unknown verbs/nouns {unknown}; choose from {_EK_VERBS} and {tuple(EK_NOUNS)}")
        bad = sorted(set(self.ss_templates) - set(SSV2_TEMPLATES))
        if bad:
            problems.append(f"unknown SSv2 templates {bad}; choose from {list(SSV2_TEMPLATES)}")
        overlap = set(self.train_videos) & set(self.val_videos)
        if overlap:
            problems.append(f"videos in both splits: {sorted(overlap)}")
        for video in (*self.train_videos, *self.val_videos):
            participant, _, number = video.partition("_")
            if not (participant[:1] == "P" and participant[1:].isdigit() and len(number) == 3 and number.isdigit()):
                problems.append(f"video id {video!r} must look like PXX_1YY (EPIC-100 extension naming)")
        train_participants = {v.split("_")[0] for v in self.train_videos}
        if set(self.unseen_participants) & train_participants:
            problems.append(f"unseen participants {self.unseen_participants} also appear in train_videos")
        if self.ek_novel_colours not in ("none", "unseen", "validation"):
            problems.append(f"ek_novel_colours must be none|unseen|validation, got {self.ek_novel_colours!r}")
        for name in ("label_noise", "ss_label_noise", "occlusion_prob", "ss_spurious", "ss_distractor_prob",
                     "ss_dirty_box_prob", "ss_empty_frame_prob", "tail_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if min(self.train_segments, self.val_segments, self.ss_train_clips, self.ss_val_clips) < 1:
            problems.append("segment and clip counts must be ≥ 1")
        if not (self.train_videos and self.val_videos):
            problems.append("train_videos and val_videos must not be empty")
        if len(self.verbs) < 2 or len(self.nouns) < 2 or len(self.ss_templates) < 2:
            problems.append("need at least 2 verbs, 2 nouns and 2 templates")
        if problems:
            raise ValueError("invalid KitchenWorldConfig: " + "; ".join(problems))

    def fps_of(self, video_id: str) -> float:
        """Frame rate of an EPIC video (``participant_fps`` override, else ``fps``)."""
        return float(dict(self.participant_fps).get(video_id.split("_")[0], self.fps))


def config_hash(config: KitchenWorldConfig, seed: int) -> str:
    """12 hex digits identifying (world version, config, seed) — the cache folder suffix."""
    payload = json.dumps({"version": WORLD_VERSION, "seed": int(seed), "config": asdict(config)},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
