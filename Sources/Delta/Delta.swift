// Delta: diff, stream, replay.
