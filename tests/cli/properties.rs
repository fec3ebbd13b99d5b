//! Property tests of the cost model (and of the network's parameter count against it), and of
//! the sweep's accuracy lookup.

use candle_core::Device;
use mobilenet_cli::arch::{Config, Family, LayerKind, Variant, instantiate};
use mobilenet_cli::cost::analyze;
use mobilenet_cli::infer::Precision;
use mobilenet_cli::nn::MobileNet;
use mobilenet_cli::published::Store;
use mobilenet_cli::sweep::{
    AccuracyModel, AccuracySource, MAX_EXTRAPOLATION_RATIO, Metric, Provenance, Unavailable, member,
};
use proptest::prelude::*;

fn alpha() -> impl Strategy<Value = f64> {
    (1u32..=200).prop_map(|hundredths| f64::from(hundredths) / 100.0)
}

fn resolution() -> impl Strategy<Value = u32> {
    32u32..=512
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mult_adds_grow_with_alpha_and_resolution(a in alpha(), b in alpha(), r in resolution(), s in resolution()) {
        let (a_lo, a_hi) = if a <= b { (a, b) } else { (b, a) };
        let (r_lo, r_hi) = if r <= s { (r, s) } else { (s, r) };
        let cost = |alpha, res| analyze(&Config::paper(alpha, res).unwrap()).totals;
        prop_assert!(cost(a_lo, r).mult_adds <= cost(a_hi, r).mult_adds);
        prop_assert!(cost(a, r_lo).mult_adds <= cost(a, r_hi).mult_adds);
        // Parameters do not depend on the resolution.
        prop_assert_eq!(cost(a, r_lo).params_deployed, cost(a, r_hi).params_deployed);
        prop_assert_eq!(cost(a, r_lo).params_keras, cost(a, r_hi).params_keras);
    }

    #[test]
    fn layer_sums_equal_totals(a in alpha(), r in resolution(), dm in 1u32..=3, variant in 0usize..3) {
        let config = Config::new(a, r, dm, 1000, Variant::ALL[variant]).unwrap();
        let report = analyze(&config);
        let t = report.totals;
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.mult_adds).sum::<u64>(), t.mult_adds);
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.params).sum::<u64>(), t.params);
        prop_assert_eq!(report.by_kind.iter().map(|k| k.mult_adds).sum::<u64>(), t.mult_adds);
        prop_assert_eq!(t.flops, 2 * t.mult_adds);
        prop_assert!(t.params < t.params_deployed && t.params_deployed < t.params_trainable);
        prop_assert!(t.params_trainable < t.params_keras);
        let pct: f64 = report.by_kind.iter().map(|k| k.mult_adds_pct).sum();
        prop_assert!((pct - 100.0).abs() < 1e-9);
    }

    #[test]
    fn separable_saving_is_exactly_the_closed_form(a in alpha(), r in resolution()) {
        let report = analyze(&Config::paper(a, r).unwrap());
        for s in &report.separable {
            let dw = report.layers.iter().find(|l| l.layer.block == Some(s.block) && l.layer.kind == LayerKind::Depthwise).unwrap();
            let pw = report.layers.iter().find(|l| l.layer.block == Some(s.block) && l.layer.kind == LayerKind::Pointwise).unwrap();
            let (k2, n) = (u64::from(dw.layer.kernel).pow(2), u64::from(pw.layer.output.c));
            // separable / standard = 1/N + 1/Dk^2  <=>  separable * Dk^2 * N = standard * (Dk^2 + N)
            prop_assert_eq!(s.separable_mult_adds * k2 * n, s.standard_mult_adds * (k2 + n));
        }
    }

    #[test]
    fn alpha_and_rho_scale_cost_quadratically(a in (25u32..=100).prop_map(|x| f64::from(x) / 100.0), r in (4u32..=7).prop_map(|x| x * 32)) {
        let base = analyze(&Config::paper(1.0, 224).unwrap()).totals.mult_adds as f64;
        let at_alpha = analyze(&Config::paper(a, 224).unwrap()).totals.mult_adds as f64;
        // The pointwise terms scale as alpha^2; the depthwise, first-layer and FC terms only as
        // alpha, and channels round down: alpha^2 within +20% / -5% over alpha in [0.25, 1].
        let ratio = at_alpha / base / (a * a);
        prop_assert!((0.95..1.2).contains(&ratio), "mult-adds / alpha^2 = {}", ratio);
        let rho = f64::from(r) / 224.0;
        let at_rho = analyze(&Config::paper(1.0, r).unwrap()).totals.mult_adds as f64;
        // SAME padding rounds sizes up at each stride: rho^2 within a few percent.
        prop_assert!((at_rho / base / (rho * rho) - 1.0).abs() < 0.05, "{}", at_rho / base / (rho * rho));
    }

    #[test]
    fn every_family_sums_and_chains(a in alpha(), r in resolution(), f in 0usize..4, minimal in any::<bool>()) {
        let family = Family::ALL[f];
        let config = Config::build(family, a, r, 1, 1000, Variant::Standard, minimal && family.is_v3()).unwrap();
        let report = analyze(&config);
        let t = report.totals;
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.mult_adds).sum::<u64>(), t.mult_adds);
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.params).sum::<u64>(), t.params);
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.se_mult_adds).sum::<u64>(), t.se_mult_adds);
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.elementwise_ops).sum::<u64>(), t.elementwise_ops);
        prop_assert_eq!(report.layers.iter().map(|l| l.cost.se_params).sum::<u64>(), t.se_params);
        // The headline counts every layer, squeeze-and-excite included; the SE-less figures
        // are the headline less SE's part.
        prop_assert_eq!(t.mult_adds, t.mult_adds_excluding_se + t.se_mult_adds);
        prop_assert_eq!(t.params, t.params_excluding_se + t.se_params);
        prop_assert_eq!(t.se_params > 0, family.is_v3() && !config.minimalistic);
        prop_assert!(t.params < t.params_deployed && t.params_deployed < t.params_trainable);
        // Table 2's split covers the headline: squeeze-and-excite is a kind of its own.
        prop_assert_eq!(report.by_kind.iter().map(|k| k.mult_adds).sum::<u64>(), t.mult_adds);
        prop_assert_eq!(report.by_kind.iter().map(|k| k.params).sum::<u64>(), t.params);
        let pct: f64 = report.by_kind.iter().map(|k| k.params_pct).sum();
        prop_assert!((pct - 100.0).abs() < 1e-9);
        for pair in report.layers.windows(2) {
            prop_assert_eq!(pair[0].layer.output, pair[1].layer.input);
        }
        for (i, l) in report.layers.iter().enumerate() {
            if let Some(from) = l.layer.residual_from {
                prop_assert!(from < i);
                prop_assert_eq!(report.layers[from].layer.input, l.layer.output);
            }
            // Every width is a multiple of 8 under make_divisible (v2/v3), the input aside.
            if family != Family::V1 {
                prop_assert_eq!(l.layer.output.c % 8, 0, "{}", l.layer.name);
            }
        }
    }

    #[test]
    fn accuracy_is_published_estimated_near_the_fit_or_absent_with_its_reason(a in alpha(), r in resolution(), m in 0usize..6) {
        let store = Store::embedded();
        let member = member::ALL[m];
        let model = AccuracyModel::new(&store, AccuracySource::Slim, member, Precision::F32);
        for metric in Metric::ALL {
            let fit = model.fit_of(metric);
            let outside = fit.and_then(|f| f.extrapolation(a, r));
            match model.lookup(a, r, metric) {
                Ok(acc) => {
                    prop_assert!((0.0..=100.0).contains(&acc.value), "{acc:?}");
                    match &acc.provenance {
                        Provenance::Published { source, .. } => prop_assert!(source.starts_with("slim-v"), "{acc:?}"),
                        Provenance::Estimated { fit: by, extrapolation } => {
                            prop_assert_eq!(*by, member);
                            prop_assert!(fit.is_some());
                            prop_assert_eq!(*extrapolation, outside);
                            prop_assert!(outside.is_none_or(|e| e.within_limit()));
                        }
                        Provenance::Measured { .. } | Provenance::MeasuredAsGiven { .. } => prop_assert!(false, "a published table measures nothing: {acc:?}"),
                    }
                }
                Err(Unavailable::NoFit) => prop_assert!(fit.is_none()),
                Err(Unavailable::BeyondLimit { extrapolation }) => {
                    prop_assert_eq!(Some(extrapolation), outside);
                    prop_assert!(extrapolation.distance() > MAX_EXTRAPOLATION_RATIO.ln());
                }
                Err(Unavailable::NotMeasured) => prop_assert!(false, "only sweep --data leaves a figure unmeasured"),
                Err(Unavailable::NoPublishedFigure) => prop_assert!(false, "only a --weights file has no published figure"),
            }
        }
        // Every member but the one-point minimalistic models estimates top-1 near its fit.
        let near = model.top1_fit.as_ref().is_some_and(|f| f.extrapolation(a, r).is_none_or(|e| e.within_limit()));
        prop_assert_eq!(model.lookup(a, r, Metric::Top1).is_ok(), near || (a == 1.0 && r == 224));
        prop_assert_eq!(model.top1_fit.is_some(), !member.minimalistic);
    }

    #[test]
    fn top1_estimates_rise_with_alpha_and_resolution_up_to_the_limit(a in alpha(), b in alpha(), r in resolution(), s in resolution(), m in 0usize..4) {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, member::ALL[m], Precision::F32);
        let fit = model.top1_fit.as_ref().unwrap();
        let near = |alpha, res| fit.extrapolation(alpha, res).is_none_or(|e| e.within_limit());
        let (a_lo, a_hi) = if a <= b { (a, b) } else { (b, a) };
        let (r_lo, r_hi) = if r <= s { (r, s) } else { (s, r) };
        if near(a_lo, r) && near(a_hi, r) {
            prop_assert!(fit.predict(a_lo, r) <= fit.predict(a_hi, r) + 1e-9);
        }
        if near(a, r_lo) && near(a, r_hi) {
            prop_assert!(fit.predict(a, r_lo) <= fit.predict(a, r_hi) + 1e-9);
        }
    }

    #[test]
    fn shapes_follow_same_padding(a in alpha(), r in resolution()) {
        let layers = instantiate(&Config::paper(a, r).unwrap());
        for pair in layers.windows(2) {
            prop_assert_eq!(pair[0].output, pair[1].input);
        }
        for l in &layers {
            if l.kind != LayerKind::AvgPool && l.kind != LayerKind::Fc {
                prop_assert_eq!(l.output.h, l.input.h.div_ceil(l.stride));
            }
        }
    }
}

proptest! {
    // Building a network allocates its weights: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn network_parameters_equal_the_cost_model(a in (10u32..=60).prop_map(|x| f64::from(x) / 100.0), r in 32u32..=96, variant in 0usize..3) {
        let config = Config::new(a, r, 1, 10, Variant::ALL[variant]).unwrap();
        let net = MobileNet::random(config, 1, &Device::Cpu).unwrap();
        prop_assert_eq!(net.parameter_count(), analyze(&config).totals.params_deployed);
    }
}
