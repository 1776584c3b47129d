# (filled by the properties stage)
