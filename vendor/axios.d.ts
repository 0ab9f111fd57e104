// The types of vendor/axios.js (the lean axios build scripts/build.js makes): axios' own.
import axios from 'axios';
export * from 'axios';
export default axios;
