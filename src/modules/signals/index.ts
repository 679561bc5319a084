import 'reflect-metadata';
export { SignalsResolver, bindSignalsService } from './signals.resolver.js';
export { SignalsService, fromRecorded, type SignalsServiceOptions } from './signals.service.js';
export { SignalsMonitor, type SignalsMonitorOptions } from './signals.monitor.js';
export { SignalsRepository, type RecordedPrediction } from './signals.repository.js';
export { signalsBus, toWire, type SignalsBus, type SignalsEvent, type SignalTopics, type WirePrediction } from './signals.topics.js';
export { createSignalsModule, type SignalsModule, type SignalsModuleDeps } from './signals.module.js';
