"""Make the sample corpus of the example manifest: python examples/make_samples.py BUCKET_ROOT

Every video is generated here with PyAV (frames show their own index); nothing is downloaded.
"""

from __future__ import annotations

import os
import sys

from snapshot import synth

GOP_2S = {"g": "60", "bf": "2"}


def main(root: str) -> None:
    folder = os.path.join(root, "media", "videos")
    os.makedirs(folder, exist_ok=True)
    videos = {
        "intro.mp4": {"frames": 360, "size": (640, 360), "options": GOP_2S},
        "phone.mp4": {"frames": 120, "size": (360, 640), "rotation": -90, "options": GOP_2S},
        "clip.webm": {"frames": 180, "size": (320, 180), "codec": "libvpx-vp9", "options": {"g": "60"}},
    }
    for name, settings in videos.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            synth.write_video(path, **settings)
    with open(os.path.join(folder, "broken.mp4"), "wb") as out:
        out.write(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    print(f"sample videos in {folder}: {', '.join(sorted(os.listdir(folder)))}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "buckets")
