export { loadConfig, configFromEnvironment, logSettingsFromEnvironment, ConfigError, redactUrl, CONFIG_DOCS } from './config.js';
export type { AlpacaSettings, Config, PolygonSettings } from './types.js';
