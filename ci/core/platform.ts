// The platform grammar (`os/arch[/variant]`, e.g. linux/amd64, linux/arm64/v8) shared by the config schema,
// the build's platform list and the registry's platform check.

export const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

export const PLATFORM_HINT = "must look like OS/ARCH[/VARIANT], e.g. linux/amd64";
