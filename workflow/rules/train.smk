# (filled by the train stage)
