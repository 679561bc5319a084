export {
  loadConfig,
  configFromEnvironment,
  logSettingsFromEnvironment,
  ConfigError,
  redactUrl,
  CONFIG_DOCS,
  type Config,
} from './config.js';
