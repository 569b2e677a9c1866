"""Every word a report shows, in English and Korean, and the functions that turn result frames
into plain sentences a stakeholder can act on.

Notebooks never hold prose: they call :func:`t` for headings and labels and the ``summary_*``
/ ``explain_*`` functions for sentences built from numbers. Both languages have the same keys
(``tests/test_report.py`` checks it).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

TEXT: dict[str, dict[str, str]] = {
    "en": {
        # report titles
        "title_weekly_uplift": "Weekly CRM uplift report",
        "title_message_performance": "Weekly message performance",
        "title_cohort_rfm": "Cohorts, RFM and customer value",
        "title_funnel": "Funnel and sessions",
        "title_experiment_readout": "Experiment readout",
        # common
        "meta": "Week {week} ({start} to {end}) · data: {source} · generated {generated}",
        "summary": "Summary",
        "missing_module": "This section needs {module}, which is not available in this installation yet.",
        "no_data_week": "There is no {what} data in week {week}; the data runs from {first} to {last}.",
        "no_table": "The data source has no {table} table, so this section is empty.",
        "cannot_compute": "Not computed for this data: {what}",
        "rows_shown": "Showing the first {shown} of {total} rows.",
        "explore": "Explore",
        "explore_note": "Interactive controls appear when this notebook is opened in JupyterLab.",
        "how_to_read": "How to read this",
        "sure_yes": "we are confident this is real ({p}, below the {alpha} threshold)",
        "sure_no": "this could be chance ({p}, not below the {alpha} threshold)",
        "sure_prob": "the probability that it is better is {prob}",
        "action_ship": "Roll out {what}.",
        "action_stop": "Stop or rework {what}.",
        "action_wait": "Keep {what} running until the sample is large enough; do not decide yet.",
        "action_none": "No action needed this week.",
        # experiment readout
        "sec_exp": "Experiment: {experiment}",
        "sec_exp_arms": "Arms and sample sizes",
        "sec_exp_results": "Results against the control",
        "sec_exp_bayes": "Chance to beat the control",
        "sec_exp_plot": "Relative change with its interval",
        "no_experiments": "The data has no experiments assigned before the end of week {week}.",
        "srm_ok": "Arm sizes match the plan (sample-ratio check {p}), so the split worked as intended.",
        "srm_bad": "Warning: arm sizes do not match the plan (sample-ratio check {p}). Something in the assignment or the logging is broken; do not trust these results until it is fixed.",
        "arms_sentence": "{n} users were in the experiment; the control arm is '{control}'.",
        "exp_moved": "In '{experiment}', {variant} changed {metric} from {control_value} to {value} ({diff}, {rel} relative to '{control}').",
        "exp_sure": "For {variant} on {metric}: {sure}.",
        "exp_interval": "The {level} interval for the relative change runs from {lo} to {hi}.",
        "exp_prob": "The probability that {variant} converts better than the control is {prob} (Bayesian, uniform prior).",
        "exp_do_ship": "Recommendation: roll out {variant} ({metric} {rel}).",
        "exp_do_stop": "Recommendation: stop {variant}; it lowers {metric} ({rel}).",
        "exp_do_wait": "Recommendation: no clear winner in '{experiment}' yet; keep the test running or accept that the difference, if any, is small.",
        "exp_do_fix": "Recommendation: fix the assignment problem in '{experiment}' before deciding anything.",
        "exp_p_adjusted": "p-values are adjusted for testing several arms and metrics ({correction}).",
        "metric_conversion": "conversion rate",
        "metric_revenue_per_user": "revenue per user",
        "metric_spend": "spend per customer",
        "metric_visit": "visit rate",
        "explore_exp": "Pick an experiment and a metric:",
        # weekly uplift
        "sec_campaigns": "Campaigns of the last {weeks} week(s) against their control groups",
        "sec_uplift_plot": "Uplift in conversion, with its interval",
        "sec_segments": "Which customers respond (segments: {segment_by})",
        "sec_holdout": "The whole CRM programme against the global holdout",
        "sec_robust": "Robustness checks for skewed metrics",
        "robust_note": "Revenue is dominated by a few large orders; these checks (trimmed means, bootstrap, rank test) should point the same way as the main result.",
        "no_campaigns": "No campaign with a randomised control group was sent in the {weeks} week(s) up to {week}.",
        "no_segments": "Segments could not be computed for this week (no earlier orders or the segment module is missing).",
        "no_holdout": "The data has no global holdout group ({experiment}), so the programme-wide effect cannot be measured.",
        "upl_total": "Across {n} campaign(s) sent in the {weeks} week(s) up to {week}, messages produced about {conv} extra buyers and {rev} extra revenue compared with randomly held-out control groups.",
        "upl_best": "Biggest effect: '{campaign}' raised conversion from {c} to {t} ({diff}); {sure}.",
        "upl_negative": "'{campaign}' lowered conversion from {c} to {t} ({diff}); {sure}.",
        "upl_cost": "Each extra buyer from '{campaign}' cost {cost} in message fees.",
        "upl_do_scale": "Do: send '{campaign}' more widely{where}.",
        "upl_do_where": ", starting with {segment} customers, where it works best",
        "upl_do_stop": "Do: stop or rework '{campaign}'.",
        "upl_do_wait": "Do: no campaign showed a clear effect; keep the control groups and review again next week.",
        "upl_row": "'{campaign}': {metric} was {t} with the message and {c} without ({diff}; interval {lo} to {hi}); {sure}. That is about {inc} extra {unit}.",
        "upl_insufficient": "'{campaign}': {metric} was {t} with the message and {c} without ({diff}); too few {why} to judge this difference, so no verdict is given (about {need} control users would be needed at this split).",
        "why_too_few_expected_events": "conversions", "why_too_few_effective_users": "buyers for such uneven spend",
        "why_skewed_difference": "users for such skewed spend at this split", "why_empty_arm": "users in one arm",
        "why_no_variance": "differences between users",
        "unit_conversion_rate": "buyers",
        "unit_revenue_per_user": "in revenue",
        "seg_row": "'{campaign}' works best for {best} customers ({best_diff}) and least for {worst} customers ({worst_diff}).",
        "seg_sizes": "Treated users per segment: {sizes}.",
        "holdout_row": "Customers who get CRM messages as usual: {metric} {t}, against {c} in the global holdout ({diff}); {sure}.",
        "window_note": "Outcomes are counted for {days} days after each send (the same for control users, from their virtual send time). Users whose {days}-day window had not ended by the end of the week ({cut}) are left out until it has, so every user is measured over the full window.",
        "upl_pending": "{cut} messaged or control users are waiting for their {days}-day window to end; they are left out until it has.",
        "metric_conversion_rate": "conversion",
        "segby_lifecycle": "lifecycle stage",
        "segby_rfm": "RFM segment",
        "segby_none": "none",
        "stage_new": "new",
        "stage_active": "active",
        "stage_reactivated": "reactivated",
        "stage_at risk": "at risk",
        "stage_churned": "churned",
        "metric_visit_rate": "visit rate",
        "metric_open_rate": "open rate",
        "metric_click_rate": "click rate",
        # message performance
        "sec_msg_week": "This week's messages by campaign and channel",
        "sec_msg_trend": "The last {weeks} weeks by channel",
        "sec_fatigue": "Message pressure and opt-outs",
        "sec_sendtime": "When messages get clicked (send hour and weekday)",
        "sec_compliance": "Compliance check of this week's messages",
        "sec_copy": "Copy tests",
        "no_messages": "No messages were sent in week {week}.",
        "msg_volume": "{sent} messages went out this week ({prev_sent} the week before); {delivered} of them were delivered ({delivery}).",
        "msg_rates": "Of delivered messages, {click} were clicked and {conv} led to an order within the attribution window ({revenue} attributed revenue).",
        "msg_moved": "Against the previous week: click rate {click_move}, conversion rate {conv_move}.",
        "msg_top": "Most attributed revenue: '{campaign}' on {channel} ({revenue}, conversion {conv}).",
        "msg_optout": "Opt-outs: {optouts} ({rate} of delivered messages).",
        "msg_attr_note": "Attributed revenue counts every order within the window after a message, including orders that would have happened anyway; the uplift report measures what messages actually caused.",
        "msg_windows": "Attribution: {basis} basis, {share} rule, windows {windows}.",
        "fatigue_row": "Users who got {hi} or more messages in a week opted out at {r_hi}, against {r_1} for users who got one. This is descriptive: heavy buyers also get more messages.",
        "comp_ok": "No compliance problem was found in this week's messages.",
        "comp_bad": "{n} message(s) broke a rule this week; the most frequent is '{rule}' ({k} messages).",
        "comp_do": "Do: fix the compliance issues ({rules}) before the next send.",
        "msg_do_ok": "Do: nothing urgent; judge campaigns by the uplift report, not by attributed revenue.",
        "sendtime_best": "Messages sent on {day} around {hour}:00 had the highest click rate ({rate}; at least {min} delivered).",
        "copy_row": "'{campaign}': '{variant}' against '{control}' on {metric}: {value} vs {control_value} ({rel} relative); {sure}.",
        "moved_up": "up {d}",
        "moved_down": "down {d}",
        "moved_flat": "unchanged",
        "weekday_names": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
        # cohorts, RFM, CLV
        "sec_retention": "Do customers come back? Retention by first-purchase {period_name}",
        "sec_repurchase": "Repeat purchase",
        "sec_rfm": "RFM segments",
        "sec_clv": "Expected customer value by segment (next {h} weeks)",
        "sec_lapse": "What lapsing customers did in their last sessions",
        "lapse_note": "Lapsing: buyers inactive for longer than their own repurchase cycle (churn risk or churned). Shares are of users, over each user's last 3 sessions, with 95% Wilson intervals; p-values from two-proportion z-tests (Welch's t-test for sessions per week).",
        "period_W": "week",
        "period_M": "month",
        "period_D": "day",
        "ret_avg": "On average {r1} of a cohort buys again in the {period_name} after their first purchase, and {rk} in {period_name} {k}.",
        "ret_latest": "The latest complete cohort ({cohort}) came back at {latest} in its next {period_name}, {move} the average.",
        "ret_above": "above",
        "ret_below": "below",
        "ret_same": "the same as",
        "rep_rate": "{rate} of customers who first bought at least {days} days ago bought again within {days} days (interval {lo} to {hi}).",
        "second_time": "Half of repeat buyers came back within {median} days; counting those who have not come back yet (Kaplan-Meier), the median wait is {km} days.",
        "second_time_nokm": "Half of repeat buyers came back within {median} days; fewer than half of all buyers have come back so far.",
        "rfm_top": "'{segment}' customers are {share} of buyers but bring {rev_share} of revenue.",
        "rfm_risk": "'{segment}' holds {n} customers ({share}) who used to buy well but have not bought for {days} days on average.",
        "clv_total": "All current customers are expected to bring {total} over the next {h} weeks; '{segment}' accounts for {share} of it.",
        "clv_note": "Expected value combines the BG/NBD purchase model with the Gamma-Gamma spend model fitted on weekly data.",
        "clv_palive_note": "P(alive) is 100% for a customer with no repeat purchase: the BG/NBD model lets customers drop out only after a repeat purchase. {segments} are mostly one-time buyers, so their P(alive) says nothing about whether they are still active.",
        "rfm_do": "Do: send a win-back offer to the {n} '{segment}' customers now, and protect '{top}' with loyalty benefits rather than discounts.",
        "cohort_axis": "{period_name}s since first purchase",
        "seg_Champions": "Champions",
        "seg_Loyal": "Loyal",
        "seg_Potential Loyalist": "Potential Loyalist",
        "seg_New": "New",
        "seg_Promising": "Promising",
        "seg_Need Attention": "Need Attention",
        "seg_About to Sleep": "About to Sleep",
        "seg_At Risk": "At Risk",
        "seg_Can't Lose": "Can't Lose",
        "seg_Hibernating": "Hibernating",
        "seg_Lost": "Lost",
        # funnel
        "sec_kpis": "Shop KPIs, week by week",
        "sec_session_funnel": "Session funnel this week",
        "sec_device": "By device this week",
        "sec_ordered_funnel": "Ordered funnel within {hours} hours",
        "sec_funnel_trend": "Funnel conversion by entry week",
        "funnel_trend_note": "Each week counts the users whose first attempt started in it; the band is the 95% Wilson interval; hollow points are weeks whose last entrants have not had the whole window yet.",
        "sec_flow": "How this week's sessions flow, step by step",
        "flow_note": "Band width is the number of sessions moving from one step to the next; the five most frequent events of each step are shown, the rest are grouped as (other).",
        "sec_behaviour": "Behaviour segments to target this week",
        "kpi_sessions": "{sessions} sessions from {visitors} visitors this week ({move} against the week before).",
        "kpi_conv": "{conv} of sessions ended with a purchase ({move}); average order value {aov}.",
        "funnel_drop": "The biggest loss is from {a} to {b}: only {rate} of sessions continue.",
        "funnel_row": "{step}: {n} sessions, {start} of all sessions, {prev} of the previous step.",
        "device_best": "{best} converts best ({best_rate} of sessions), {worst} worst ({worst_rate}).",
        "behaviour_row": "{n} {segment} this week.",
        "funnel_do": "Do: send the cart reminder to the {n} users who left a cart or checkout this week, and recommendations to the {m} explorers.",
        "funnel_do_plain": "Do: look at the {a} step first; it loses the most sessions.",
        "step_session": "session",
        "step_product_view": "product view",
        "step_add_to_cart": "add to cart",
        "step_begin_checkout": "checkout",
        "step_purchase": "purchase",
        "beh_explorers": "explorers (long product views, no cart)",
        "beh_comparers": "comparers (added to cart, not bought within 24 h)",
        "beh_abandoned_cart": "users who abandoned at the cart",
        "beh_abandoned_checkout": "users who abandoned at checkout",
        "explore_funnel": "Pick funnel steps, a window and a device:",
        "ordered_row": "{n} users did {first} this week; {rate} of them reached {last} within {hours} hours.",
        "ordered_drop": "Most users are lost between {a} and {b}: {drop} users ({rate} of those who got to {a}) stopped there.",
        "groups_same": "Devices do not differ clearly at any step (chi-square tests, smallest p = {p}).",
        "groups_diff": "At the {step} step devices differ ({min} to {max} continue; {p}).",
        "ttc_row": "Half of the buyers needed less than {m} minutes from {first} to {last}.",
    },
    "ko": {
        "title_weekly_uplift": "주간 CRM 업리프트 리포트",
        "title_message_performance": "주간 메시지 성과",
        "title_cohort_rfm": "코호트, RFM, 고객 가치",
        "title_funnel": "퍼널과 세션",
        "title_experiment_readout": "실험 결과 리포트",
        "meta": "{week} 주차 ({start} ~ {end}) · 데이터: {source} · 생성 {generated}",
        "summary": "요약",
        "missing_module": "이 섹션에는 {module} 모듈이 필요하지만 아직 설치되어 있지 않습니다.",
        "no_data_week": "{week} 주차에는 {what} 데이터가 없습니다. 데이터 기간은 {first} ~ {last}입니다.",
        "no_table": "데이터 소스에 {table} 테이블이 없어 이 섹션은 비어 있습니다.",
        "cannot_compute": "이 데이터로는 계산할 수 없습니다: {what}",
        "rows_shown": "전체 {total}행 중 처음 {shown}행을 보여 줍니다.",
        "explore": "탐색",
        "explore_note": "JupyterLab에서 이 노트북을 열면 대화형 컨트롤이 나타납니다.",
        "how_to_read": "읽는 법",
        "sure_yes": "우연이 아니라고 확신할 수 있습니다 ({p}, 기준 {alpha} 미만)",
        "sure_no": "우연일 수 있습니다 ({p}, 기준 {alpha} 이상)",
        "sure_prob": "더 나을 확률은 {prob}입니다",
        "action_ship": "{what}을(를) 전체에 적용하세요.",
        "action_stop": "{what}을(를) 중단하거나 수정하세요.",
        "action_wait": "표본이 충분해질 때까지 {what}을(를) 계속 진행하고, 아직 결정하지 마세요.",
        "action_none": "이번 주에는 조치가 필요 없습니다.",
        "sec_exp": "실험: {experiment}",
        "sec_exp_arms": "실험군과 표본 크기",
        "sec_exp_results": "대조군 대비 결과",
        "sec_exp_bayes": "대조군보다 나을 확률",
        "sec_exp_plot": "상대 변화와 신뢰구간",
        "no_experiments": "{week} 주차 말까지 배정된 실험이 데이터에 없습니다.",
        "srm_ok": "실험군 크기가 계획과 일치합니다 (표본 비율 검정 {p}). 배정이 의도대로 이루어졌습니다.",
        "srm_bad": "경고: 실험군 크기가 계획과 다릅니다 (표본 비율 검정 {p}). 배정이나 로깅에 문제가 있으니, 고치기 전에는 이 결과를 믿지 마세요.",
        "arms_sentence": "실험 대상은 {n}명이며, 대조군은 '{control}'입니다.",
        "exp_moved": "'{experiment}'에서 {variant}은(는) {metric}을(를) {control_value}에서 {value}(으)로 바꾸었습니다 ('{control}' 대비 {diff}, 상대 {rel}).",
        "exp_sure": "{variant}의 {metric}: {sure}.",
        "exp_interval": "상대 변화의 {level} 신뢰구간은 {lo} ~ {hi}입니다.",
        "exp_prob": "{variant}의 전환율이 대조군보다 높을 확률은 {prob}입니다 (베이지안, 균등 사전분포).",
        "exp_do_ship": "권장: {variant}을(를) 전체에 적용하세요 ({metric} {rel}).",
        "exp_do_stop": "권장: {variant}을(를) 중단하세요. {metric}을(를) 낮춥니다 ({rel}).",
        "exp_do_wait": "권장: '{experiment}'에는 아직 확실한 승자가 없습니다. 테스트를 계속하거나, 차이가 있더라도 작다고 받아들이세요.",
        "exp_do_fix": "권장: 결정 전에 '{experiment}'의 배정 문제부터 고치세요.",
        "exp_p_adjusted": "여러 실험군과 지표를 함께 검정했으므로 p-값을 보정했습니다 ({correction}).",
        "metric_conversion": "전환율",
        "metric_revenue_per_user": "1인당 매출",
        "metric_spend": "1인당 구매액",
        "metric_visit": "방문율",
        "explore_exp": "실험과 지표를 고르세요:",
        "sec_campaigns": "최근 {weeks}주 캠페인과 대조군 비교",
        "sec_uplift_plot": "전환율 업리프트와 신뢰구간",
        "sec_segments": "어떤 고객이 반응하나 (세그먼트: {segment_by})",
        "sec_holdout": "전체 CRM 프로그램과 글로벌 홀드아웃 비교",
        "sec_robust": "치우친 지표의 강건성 점검",
        "robust_note": "매출은 소수의 큰 주문이 좌우하므로, 이 점검(절사 평균, 부트스트랩, 순위 검정)이 주 결과와 같은 방향을 가리켜야 합니다.",
        "no_campaigns": "{week} 주차까지 {weeks}주 동안 무작위 대조군이 있는 캠페인이 발송되지 않았습니다.",
        "no_segments": "이번 주에는 세그먼트를 계산할 수 없었습니다 (이전 주문이 없거나 세그먼트 모듈이 없습니다).",
        "no_holdout": "데이터에 글로벌 홀드아웃 그룹({experiment})이 없어 프로그램 전체의 효과를 측정할 수 없습니다.",
        "upl_total": "{week} 주차까지 {weeks}주 동안 발송한 캠페인 {n}개는 무작위 대조군과 비교해 약 {conv}명의 추가 구매 고객과 {rev}의 추가 매출을 만들었습니다.",
        "upl_best": "가장 큰 효과: '{campaign}'은(는) 전환율을 {c}에서 {t}(으)로 올렸습니다 ({diff}). {sure}.",
        "upl_negative": "'{campaign}'은(는) 전환율을 {c}에서 {t}(으)로 낮췄습니다 ({diff}). {sure}.",
        "upl_cost": "'{campaign}'의 추가 구매 고객 1명당 발송 비용은 {cost}입니다.",
        "upl_do_scale": "할 일: '{campaign}'을(를) 더 넓게 발송하세요{where}.",
        "upl_do_where": ". 효과가 가장 큰 {segment} 고객부터 시작하세요",
        "upl_do_stop": "할 일: '{campaign}'을(를) 중단하거나 수정하세요.",
        "upl_do_wait": "할 일: 뚜렷한 효과를 보인 캠페인이 없습니다. 대조군을 유지하고 다음 주에 다시 확인하세요.",
        "upl_row": "'{campaign}': {metric}은(는) 메시지를 받은 고객 {t}, 받지 않은 고객 {c}였습니다 ({diff}; 구간 {lo} ~ {hi}). {sure}. 약 {inc}의 추가 {unit}에 해당합니다.",
        "upl_insufficient": "'{campaign}': {metric}은(는) 메시지를 받은 고객 {t}, 받지 않은 고객 {c}였습니다 ({diff}). {why}이(가) 너무 적어 이 차이는 판정하지 않습니다 (이 비율이라면 대조군 약 {need}명이 필요합니다).",
        "why_too_few_expected_events": "전환 수", "why_too_few_effective_users": "편차가 큰 매출에 비해 구매자 수",
        "why_skewed_difference": "치우친 매출에 비해 고객 수", "why_empty_arm": "한 집단의 고객 수",
        "why_no_variance": "고객 간 차이",
        "unit_conversion_rate": "구매 고객(명)",
        "unit_revenue_per_user": "매출(원)",
        "seg_row": "'{campaign}'은(는) {best} 고객에게 가장 효과가 크고 ({best_diff}), {worst} 고객에게 가장 작습니다 ({worst_diff}).",
        "seg_sizes": "세그먼트별 발송 고객 수: {sizes}.",
        "holdout_row": "평소대로 CRM 메시지를 받는 고객의 {metric}은(는) {t}, 글로벌 홀드아웃은 {c}입니다 ({diff}). {sure}.",
        "window_note": "각 발송 후 {days}일 동안의 성과를 셉니다 (대조군은 가상 발송 시점부터 동일). 주말까지 {days}일 기간이 끝나지 않은 사용자({cut}명)는 기간이 끝날 때까지 제외하므로, 모든 사용자를 같은 기간으로 측정합니다.",
        "upl_pending": "발송군과 대조군 사용자 {cut}명은 {days}일 성과 기간이 아직 끝나지 않아 기간이 끝날 때까지 제외했습니다.",
        "metric_conversion_rate": "전환율",
        "segby_lifecycle": "라이프사이클 단계",
        "segby_rfm": "RFM 세그먼트",
        "segby_none": "없음",
        "stage_new": "신규",
        "stage_active": "활성",
        "stage_reactivated": "복귀",
        "stage_at risk": "이탈 위험",
        "stage_churned": "이탈",
        "metric_visit_rate": "방문율",
        "metric_open_rate": "오픈율",
        "metric_click_rate": "클릭률",
        "sec_msg_week": "이번 주 캠페인·채널별 메시지",
        "sec_msg_trend": "최근 {weeks}주 채널별 추이",
        "sec_fatigue": "메시지 피로도와 수신거부",
        "sec_sendtime": "언제 보낸 메시지가 클릭되나 (발송 시각과 요일)",
        "sec_compliance": "이번 주 메시지 준법 점검",
        "sec_copy": "카피 테스트",
        "no_messages": "{week} 주차에는 발송된 메시지가 없습니다.",
        "msg_volume": "이번 주 메시지 {sent}건을 발송했고 (전주 {prev_sent}건), 그중 {delivered}건이 도달했습니다 ({delivery}).",
        "msg_rates": "도달한 메시지 중 {click}가 클릭되었고 {conv}가 기여 기간 안에 주문으로 이어졌습니다 (기여 매출 {revenue}).",
        "msg_moved": "전주 대비 클릭률 {click_move}, 전환율 {conv_move}.",
        "msg_top": "기여 매출 1위: {channel} 채널의 '{campaign}' ({revenue}, 전환율 {conv}).",
        "msg_optout": "수신거부: {optouts}건 (도달 메시지의 {rate}).",
        "msg_attr_note": "기여 매출은 메시지 뒤 기간 안의 모든 주문을 세므로, 메시지가 없어도 일어났을 주문도 포함합니다. 메시지가 실제로 만든 효과는 업리프트 리포트에서 봅니다.",
        "msg_windows": "기여 기준: {basis}, 배분 규칙 {share}, 기간 {windows}.",
        "fatigue_row": "한 주에 메시지를 {hi}건 이상 받은 고객의 수신거부율은 {r_hi}로, 1건 받은 고객의 {r_1}보다 높습니다. 상관관계일 뿐입니다: 많이 사는 고객이 메시지도 많이 받습니다.",
        "comp_ok": "이번 주 메시지에서 준법 문제가 발견되지 않았습니다.",
        "comp_bad": "이번 주 메시지 {n}건이 규정을 위반했습니다. 가장 많은 위반은 '{rule}' ({k}건)입니다.",
        "comp_do": "할 일: 다음 발송 전에 준법 문제({rules})를 고치세요.",
        "msg_do_ok": "할 일: 급한 조치는 없습니다. 캠페인 평가는 기여 매출이 아니라 업리프트 리포트로 하세요.",
        "sendtime_best": "{day}요일 {hour}시 무렵 발송한 메시지의 클릭률이 가장 높았습니다 ({rate}, 도달 {min}건 이상 기준).",
        "copy_row": "'{campaign}': {metric}에서 '{variant}'은(는) '{control}' 대비 {value} 대 {control_value} (상대 {rel}). {sure}.",
        "moved_up": "{d} 상승",
        "moved_down": "{d} 하락",
        "moved_flat": "변화 없음",
        "weekday_names": "월,화,수,목,금,토,일",
        "sec_retention": "고객은 다시 오나? 첫 구매 {period_name}별 재구매율",
        "sec_repurchase": "재구매",
        "sec_rfm": "RFM 세그먼트",
        "sec_clv": "세그먼트별 기대 고객 가치 (향후 {h}주)",
        "sec_lapse": "이탈 중인 고객의 마지막 세션 행동",
        "lapse_note": "이탈 중: 자신의 재구매 주기보다 오래 활동이 없는 구매 고객(이탈 위험 또는 이탈). 비율은 고객별 마지막 3개 세션 기준이며 95% Wilson 구간을 함께 보입니다. p-값은 두 비율 z-검정(주당 세션 수는 Welch t-검정)입니다.",
        "period_W": "주",
        "period_M": "월",
        "period_D": "일",
        "ret_avg": "평균적으로 코호트의 {r1}가 첫 구매 다음 {period_name}에 다시 구매하고, {k}번째 {period_name}에는 {rk}가 구매합니다.",
        "ret_latest": "가장 최근 완료 코호트({cohort})의 다음 {period_name} 재구매율은 {latest}로 평균{move}.",
        "ret_above": "보다 높습니다",
        "ret_below": "보다 낮습니다",
        "ret_same": "과 같습니다",
        "rep_rate": "첫 구매 후 {days}일 이상 지난 고객 중 {rate}가 {days}일 안에 재구매했습니다 (구간 {lo} ~ {hi}).",
        "second_time": "재구매 고객의 절반은 {median}일 안에 돌아왔습니다. 아직 돌아오지 않은 고객까지 고려하면 (카플란-마이어) 중앙값은 {km}일입니다.",
        "second_time_nokm": "재구매 고객의 절반은 {median}일 안에 돌아왔습니다. 아직 전체 구매 고객의 절반 미만만 재구매했습니다.",
        "rfm_top": "'{segment}' 고객은 구매 고객의 {share}이지만 매출의 {rev_share}를 차지합니다.",
        "rfm_risk": "'{segment}'에는 예전에 많이 샀지만 평균 {days}일째 구매가 없는 고객 {n}명({share})이 있습니다.",
        "clv_total": "현재 고객 전체의 향후 {h}주 기대 가치는 {total}이며, '{segment}'가 그중 {share}를 차지합니다.",
        "clv_note": "기대 가치는 주 단위 데이터로 적합한 BG/NBD 구매 모델과 Gamma-Gamma 구매액 모델을 결합한 값입니다.",
        "clv_palive_note": "재구매가 없는 고객의 생존 확률(P(alive))은 100%로 나옵니다. BG/NBD 모델은 재구매 뒤에만 이탈할 수 있다고 가정하기 때문입니다. {segments}은(는) 대부분 한 번만 구매한 고객이므로 이들의 생존 확률은 아직 활동 중인지를 알려주지 않습니다.",
        "rfm_do": "할 일: '{segment}' 고객 {n}명에게 지금 윈백 혜택을 보내고, '{top}' 고객은 할인보다 로열티 혜택으로 지키세요.",
        "cohort_axis": "첫 구매 후 경과 {period_name}",
        "seg_Champions": "챔피언",
        "seg_Loyal": "충성 고객",
        "seg_Potential Loyalist": "잠재 충성 고객",
        "seg_New": "신규",
        "seg_Promising": "유망 고객",
        "seg_Need Attention": "관심 필요",
        "seg_About to Sleep": "휴면 직전",
        "seg_At Risk": "이탈 위험",
        "seg_Can't Lose": "놓치면 안 될 고객",
        "seg_Hibernating": "휴면",
        "seg_Lost": "이탈",
        "sec_kpis": "주간 쇼핑몰 KPI",
        "sec_session_funnel": "이번 주 세션 퍼널",
        "sec_device": "이번 주 기기별",
        "sec_ordered_funnel": "{hours}시간 안의 순서 퍼널",
        "sec_funnel_trend": "진입 주별 퍼널 전환",
        "funnel_trend_note": "각 주는 첫 시도가 그 주에 시작된 사용자를 셉니다. 띠는 95% Wilson 구간이고, 속이 빈 점은 마지막 진입자가 아직 전체 기간을 채우지 못한 주입니다.",
        "sec_flow": "이번 주 세션의 단계별 흐름",
        "flow_note": "띠의 폭은 한 단계에서 다음 단계로 이동한 세션 수입니다. 단계마다 가장 많은 이벤트 5개를 보여 주고 나머지는 (other)로 묶습니다.",
        "sec_behaviour": "이번 주 타깃 행동 세그먼트",
        "kpi_sessions": "이번 주 방문자 {visitors}명이 {sessions}개 세션을 만들었습니다 (전주 대비 {move}).",
        "kpi_conv": "세션의 {conv}가 구매로 끝났습니다 ({move}). 평균 주문 금액은 {aov}입니다.",
        "funnel_drop": "가장 큰 이탈은 {a}에서 {b}로 가는 단계입니다. 세션의 {rate}만 다음 단계로 갑니다.",
        "funnel_row": "{step}: 세션 {n}개, 전체의 {start}, 이전 단계의 {prev}.",
        "device_best": "{best}의 전환율이 가장 높고 ({best_rate}), {worst}가 가장 낮습니다 ({worst_rate}).",
        "behaviour_row": "이번 주 {segment}: {n}명.",
        "funnel_do": "할 일: 이번 주 장바구니나 결제에서 이탈한 {n}명에게 장바구니 리마인드를, 탐색형 고객 {m}명에게 추천 메시지를 보내세요.",
        "funnel_do_plain": "할 일: 세션을 가장 많이 잃는 {a} 단계부터 살펴보세요.",
        "step_session": "세션",
        "step_product_view": "상품 조회",
        "step_add_to_cart": "장바구니 담기",
        "step_begin_checkout": "결제 시작",
        "step_purchase": "구매",
        "beh_explorers": "탐색형 고객 (오래 보고 담지 않음)",
        "beh_comparers": "비교형 고객 (담았지만 24시간 안에 사지 않음)",
        "beh_abandoned_cart": "장바구니에서 이탈한 고객",
        "beh_abandoned_checkout": "결제 단계에서 이탈한 고객",
        "explore_funnel": "퍼널 단계, 기간, 기기를 고르세요:",
        "ordered_row": "이번 주 {first} 고객은 {n}명이며, 그중 {rate}가 {hours}시간 안에 {last}까지 도달했습니다.",
        "ordered_drop": "가장 많이 이탈하는 구간은 {a}에서 {b}입니다. {a}까지 온 고객의 {rate}({drop}명)가 여기서 멈췄습니다.",
        "groups_same": "어느 단계에서도 기기 간 차이가 뚜렷하지 않습니다 (카이제곱 검정, 최소 p = {p}).",
        "groups_diff": "{step} 단계에서 기기 간 차이가 있습니다 (다음 단계 진행률 {min} ~ {max}; {p}).",
        "ttc_row": "구매 고객의 절반은 {first}에서 {last}까지 {m}분이 채 걸리지 않았습니다.",
    },
}

#: Column headers shown in tables.
COLUMNS: dict[str, dict[str, str]] = {
    "en": {"estimate_control": "control value", "estimate": "value", "abs_lift": "difference",
           "rel_lift": "relative change", "rel_ci_low": "rel. change low", "rel_ci_high": "rel. change high",
           "p_adjusted": "p adjusted", "p_value": "p-value", "prob_better": "chance to beat control",
           "lift_ci_low": "lift low", "lift_ci_high": "lift high", "n": "users",
           "hour": "send hour", "messages_per_period": "messages per week", "user_periods": "user-weeks"},
    "ko": {
        "variant": "변형", "arm": "그룹", "experiment": "실험", "campaign": "캠페인", "channel": "채널",
        "metric": "지표", "n": "표본 수", "users": "고객 수", "estimate": "추정치", "ci_low": "신뢰구간 하한",
        "ci_high": "신뢰구간 상한", "p_value": "p-값", "method": "방법", "segment": "세그먼트",
        "cohort": "코호트", "period": "기간", "retention": "재구매율", "revenue": "매출", "orders": "주문 수",
        "conversion": "전환율", "rate": "비율", "lift": "상승률", "uplift": "업리프트", "week": "주차",
        "entered": "진입 고객 수", "complete": "기간 완료",
        "sent": "발송", "delivered": "도달", "opened": "오픈", "clicked": "클릭", "converted": "전환",
        "unsubscribed": "수신거부", "cost": "비용", "step": "순서", "count": "수", "share": "비중",
        "recency": "최근성", "frequency": "빈도", "monetary": "금액", "clv": "고객생애가치",
        "delta": "차이", "mean": "평균", "control": "대조군", "treatment": "처치군",
        "prob_better": "더 나을 확률", "decision": "결정", "value": "값",
        "estimate_control": "대조군 값", "delivery_rate": "도달률", "open_rate": "오픈율", "click_rate": "클릭률",
        "conversion_rate": "전환율", "optout_rate": "수신거부율", "optouts": "수신거부", "click_to_open": "오픈 후 클릭률",
        "revenue_per_recipient": "수신자당 매출", "recipients": "수신자", "messages_per_period": "주간 메시지 수",
        "user_periods": "고객-주", "buyers": "구매 고객", "rule": "규칙", "description": "설명", "checked": "점검 건수",
        "violations": "위반", "example_message_ids": "예시 메시지", "treatment_value": "처치군 값",
        "control_value": "대조군 값", "n_treatment": "처치군 수", "n_control": "대조군 수", "incremental": "증분",
        "cost_per_incremental": "증분당 비용", "hour": "시", "scale": "척도", "uplift": "업리프트",
        "measure": "측정값", "label": "구분", "customers": "고객 수",
        "revenue_share": "매출 비중", "recency_mean": "평균 최근성(일)", "frequency_mean": "평균 구매 횟수",
        "monetary_mean": "평균 구매액", "expected_purchases": "기대 구매 수", "expected_value": "기대 가치",
        "value_share": "가치 비중", "value_per_customer": "고객당 가치", "p_alive_mean": "평균 생존 확률",
        "n_customers": "고객 수", "n_repeat": "재구매 고객", "sessions": "세션", "from_start": "시작 대비",
        "from_previous": "이전 단계 대비", "visitors": "방문자", "unique_visitors": "순방문자", "device": "기기",
        "conversion_rate_per_session": "세션 전환율", "conversion_rate_per_user": "방문자 전환율",
        "add_to_cart_rate": "장바구니 담기율", "checkout_completion_rate": "결제 완료율",
        "average_order_value": "평균 주문 금액", "revenue_per_visitor": "방문자당 매출", "bounce_rate": "이탈률",
        "pages_per_session": "세션당 페이지", "n_cohorts": "코호트 수", "purchasers": "구매자",
        "step_name": "단계", "conversion_from_start": "시작 대비 전환", "conversion_from_previous": "이전 단계 대비 전환",
        "drop_off": "이탈", "by": "구분", "min_rate": "최저 진행률", "max_rate": "최고 진행률",
        "median_from_previous_seconds": "이전 단계부터 중앙값(초)", "median_seconds": "시작부터 중앙값(초)", "period_index": "경과 기간", "weighted_share": "가중 평균 비율", "ratio": "비율", "ratio_ci_low": "비율 하한", "ratio_ci_high": "비율 상한", "abs_lift": "절대 차이", "rel_lift": "상대 변화", "rel_ci_low": "상대 변화 하한",
        "rel_ci_high": "상대 변화 상한", "p_adjusted": "보정 p-값", "lift_ci_low": "상승률 하한",
        "lift_ci_high": "상승률 상한", "expected_loss": "기대 손실",
    },
}


def t(key: str, lang: str = "en", **kw: Any) -> str:
    """The text ``key`` in ``lang``, formatted with ``kw``.

    Raises
    ------
    ValueError
        If ``lang`` is not ``"en"`` or ``"ko"``.
    KeyError
        If ``key`` is unknown.
    """
    if lang not in TEXT:
        raise ValueError(f"lang={lang!r}: allowed values are {list(TEXT)}")
    return TEXT[lang][key].format(**kw) if kw else TEXT[lang][key]


def report_title(name: str, lang: str = "en") -> str:
    key = f"title_{name}"
    return t(key, lang) if key in TEXT.get(lang, {}) else name.replace("_", " ").capitalize()


def col_label(col: Any, lang: str = "en") -> str:
    """A column header in ``lang`` (unknown columns are shown with spaces for underscores)."""
    c = str(col)
    return COLUMNS.get(lang, {}).get(c, c.replace("_", " "))


# -- number formatting ----------------------------------------------------------------------
def _holm_significant(p: pd.Series, alpha: float) -> pd.Series:
    """Which p-values Holm's procedure rejects at ``alpha`` within their family."""
    from ..abtest.corrections import adjust_pvalues
    if p.empty:
        return p.astype(bool)
    return pd.Series(adjust_pvalues(p.to_numpy(float), "holm") < alpha, index=p.index)


def _nan(x) -> bool:
    try:
        return x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x)
    except (TypeError, ValueError):
        return False


#: The shop's currency and number locale used by :func:`money`, :func:`num` and :func:`pct`
#: (set once per report by :meth:`crmlab.report.nb.Report` from the shop settings).
SHOP = {"currency": "KRW", "locale": "en"}


def use_shop(currency: str, locale: str) -> None:
    """Format every later number of this process with ``currency`` and ``locale`` (Babel)."""
    SHOP.update(currency=currency, locale=locale)


def pct(x: float, digits: int = 1) -> str:
    """0.1234 -> '12.3%' (in the shop's locale)."""
    from babel.numbers import format_percent
    return "–" if _nan(x) else format_percent(x, format="#,##0" + ("." + "0" * digits if digits else "") + "%",
                                              locale=SHOP["locale"])


def pp(x: float, digits: int = 1) -> str:
    """A difference of two rates in percentage points: 0.012 -> '+1.2 pp' ('%p' in Korean texts)."""
    return "–" if _nan(x) else f"{x * 100:+.{digits}f} pp"


def num(x: float, digits: int = 0) -> str:
    from babel.numbers import format_decimal
    return "–" if _nan(x) else format_decimal(x, format="#,##0" + ("." + "0" * digits if digits else ""),
                                              locale=SHOP["locale"])


def money(x: float) -> str:
    """In the shop's currency and locale (Babel): 12345.6 -> '₩12,346' (KRW), '$12,345.60' (USD)."""
    from babel.numbers import format_currency
    return "–" if _nan(x) else format_currency(x, SHOP["currency"], locale=SHOP["locale"])


def pval(p: float) -> str:
    if _nan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_eq(p: float) -> str:
    """'p = 0.012' or 'p < 0.001' for a sentence."""
    v = pval(p)
    return f"p {v}" if v.startswith("<") else f"p = {v}"


def prob(x: float) -> str:
    """A probability as a percentage, never rounded to a certain 0% or 100%."""
    if _nan(x):
        return "–"
    if x >= 0.999:
        return "> 99.9%"
    if x <= 0.001:
        return "< 0.1%"
    return pct(x, 1)


_FORMATTERS = {"prob": prob, "pct": pct, "pp": pp, "int": lambda x: num(x, 0), "money": money, "p": pval,
               "float": lambda x: num(x, 3)}


def format_frame(df: pd.DataFrame, formats: Mapping[str, str], lang: str = "en") -> pd.DataFrame:
    """A copy of ``df`` with numbers as display strings (see :meth:`Report.table`)."""
    out = df.copy()
    for c in out.columns:
        f = formats.get(c)
        s = out[c]
        if f is None:
            if pd.api.types.is_float_dtype(s):
                f = "p" if str(c) in ("p_value", "pvalue") else "float"
            elif pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s):
                f = "int"
            elif isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
                out[c] = s.dt.strftime("%Y-%m-%d")
                continue
            else:
                out[c] = s.astype(object).where(s.notna(), "–").astype(str)
                continue
        fn = _FORMATTERS.get(f) or (lambda x, _f=f: "–" if _nan(x) else _f.format(x))
        out[c] = [fn(v) for v in s]
    return out


def sureness(p_value: float, alpha: float, lang: str = "en") -> str:
    """'we are confident ...' or 'this could be chance ...' for a p-value against ``alpha``."""
    key = "sure_yes" if (not _nan(p_value) and p_value < alpha) else "sure_no"
    return t(key, lang, p=p_eq(p_value), alpha=f"{alpha:g}")


# -- experiment readout ---------------------------------------------------------------------
RATE_METRICS = ("conversion", "visit", "converted", "open_rate", "click_rate", "conversion_rate", "visit_rate",
                "delivery_rate", "unsubscribe_rate", "ctr")


def metric_name(metric: str, lang: str = "en") -> str:
    key = f"metric_{metric}"
    return t(key, lang) if key in TEXT[lang] else str(metric).replace("_", " ")


def metric_value(metric: str, x: float) -> str:
    """A metric's value: rates as percentages, amounts in won."""
    return pct(x, 2) if metric in RATE_METRICS else money(x) if abs(x) >= 100 else num(x, 2)


def metric_diff(metric: str, x: float) -> str:
    if metric in RATE_METRICS:
        return pp(x, 2)
    return ("+" if x >= 0 else "") + (money(x) if abs(x) >= 100 else num(x, 2))


def rel(x: float) -> str:
    return "–" if _nan(x) else f"{x * 100:+.1f}%"


def _p(row) -> float:
    return float(row["p_adjusted"]) if "p_adjusted" in row and not _nan(row["p_adjusted"]) else float(row["p_value"])


def explain_comparison(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    """Sentences for one row of :func:`crmlab.abtest.compare`: what changed, by how much,
    the interval, and whether it could be chance."""
    m = str(row["metric"])
    moved = t("exp_moved", lang, experiment=row.get("experiment", ""), variant=row["variant"],
              metric=metric_name(m, lang), control_value=metric_value(m, row["estimate_control"]),
              value=metric_value(m, row["estimate"]), diff=metric_diff(m, row["abs_lift"]),
              rel=rel(row["rel_lift"]), control=row["control"])
    if not row.get("experiment"):
        moved = moved.replace("In '', ", "").replace("''에서 ", "")
    interval = t("exp_interval", lang, level=f"{(1 - alpha) * 100:g}%", lo=rel(row["rel_ci_low"]),
                 hi=rel(row["rel_ci_high"]))
    sure = t("exp_sure", lang, variant=row["variant"], metric=metric_name(m, lang),
             sure=sureness(_p(row), alpha, lang))
    return " ".join([moved, interval, sure])


def summary_experiment(result, alpha: float, lang: str = "en", primary: str = "conversion") -> list[str]:
    """Stakeholder bullets for one experiment (an :class:`~crmlab.report.analyses.ExperimentResult`):
    what moved (best arm on the primary metric), how sure we are, and what to do."""
    exp = result.experiment
    out: list[str] = []
    if result.srm is not None and getattr(result.srm, "flagged", False):
        out.append(t("srm_bad", lang, p=p_eq(result.srm.p_value)))
        out.append(t("exp_do_fix", lang, experiment=exp))
        return out
    res = result.results
    if res.empty:
        return [t("exp_do_wait", lang, experiment=exp)]
    prim = res[res["metric"] == primary]
    if prim.empty:
        prim = res[res["metric"] == res["metric"].iloc[0]]
    best = prim.sort_values("abs_lift", ascending=False).iloc[0].to_dict()
    best["experiment"] = exp
    m = best["metric"]
    out.append(t("exp_moved", lang, experiment=exp, variant=best["variant"], metric=metric_name(m, lang),
                 control_value=metric_value(m, best["estimate_control"]), value=metric_value(m, best["estimate"]),
                 diff=metric_diff(m, best["abs_lift"]), rel=rel(best["rel_lift"]), control=best["control"]))
    out.append(t("exp_sure", lang, variant=best["variant"], metric=metric_name(m, lang),
                 sure=sureness(_p(best), alpha, lang)))
    b = result.bayes
    if b is not None and not b.empty and (b["variant"] == best["variant"]).any():
        p_better = float(b.loc[b["variant"] == best["variant"], "prob_better"].iloc[0])
        out.append(t("exp_prob", lang, variant=best["variant"], prob=globals()["prob"](p_better)))
    sig = prim[[_p(r) < alpha for r in prim.to_dict("records")]]
    winners = sig[sig["abs_lift"] > 0].sort_values("abs_lift", ascending=False)
    losers = sig[sig["abs_lift"] < 0]
    if not winners.empty:
        w = winners.iloc[0]
        out.append(t("exp_do_ship", lang, variant=w["variant"], metric=metric_name(w["metric"], lang),
                     rel=rel(w["rel_lift"])))
    elif not losers.empty:
        w = losers.sort_values("abs_lift").iloc[0]
        out.append(t("exp_do_stop", lang, variant=w["variant"], metric=metric_name(w["metric"], lang),
                     rel=rel(w["rel_lift"])))
    else:
        out.append(t("exp_do_wait", lang, experiment=exp))
    return out


def summary_experiments(results, alpha: float, lang: str = "en", primary: str = "conversion") -> list[str]:
    """One bullet per experiment (its :func:`summary_experiment` sentences joined), so a
    readout of many experiments keeps a short summary."""
    results = list(results)
    if len(results) == 1:
        return summary_experiment(results[0], alpha, lang, primary)
    return [" ".join(summary_experiment(r, alpha, lang, primary)) for r in results]


def explain_heavy_tail(heavy: pd.DataFrame, alpha: float, lang: str = "en") -> list[str]:
    """One sentence per robust check row (winsorized mean, bootstrap, rank test)."""
    if heavy is None or heavy.empty:
        return []
    out = []
    for r in heavy.to_dict("records"):
        sure = sureness(r["p_value"], alpha, lang) if not _nan(r.get("p_value")) else ""
        out.append(f"{r['variant']} · {metric_name(str(r['metric']), lang)} · {r['method']}: "
                   f"{num(r['estimate'], 3)} [{num(r['ci_low'], 3)}, {num(r['ci_high'], 3)}]" + (f"; {sure}." if sure else "."))
    return out


# -- weekly uplift --------------------------------------------------------------------------
def explain_uplift(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    """One sentence for a row of :func:`crmlab.uplift.campaign_uplift` / ``holdout_uplift``."""
    m = str(row["metric"])
    inc = row.get("incremental")
    inc_s = money(inc) if m == "revenue_per_user" else num(inc, 0)
    unit_key = f"unit_{m}"
    if row.get("status") == "insufficient":
        reason = f"why_{row.get('reason')}"
        need = row.get("n_needed")
        return t("upl_insufficient", lang, campaign=row["experiment"], metric=metric_name(m, lang),
                 t=metric_value(m, row["estimate"]), c=metric_value(m, row["estimate_control"]),
                 diff=metric_diff(m, row["abs_lift"]), why=t(reason, lang) if reason in TEXT[lang] else reason,
                 need=num(need, 0) if not _nan(need) else "?")
    return t("upl_row", lang, campaign=row["experiment"], metric=metric_name(m, lang),
             t=metric_value(m, row["estimate"]), c=metric_value(m, row["estimate_control"]),
             diff=metric_diff(m, row["abs_lift"]), lo=metric_diff(m, row["abs_ci_low"]), hi=metric_diff(m, row["abs_ci_high"]),
             sure=sureness(row["p_value"], alpha, lang), inc=inc_s,
             unit=t(unit_key, lang) if unit_key in TEXT[lang] else "")


def explain_segments(by_segment: pd.DataFrame, lang: str = "en", metric: str = "conversion_rate") -> list[str]:
    """Per campaign: the segment where the uplift is largest and smallest."""
    out = []
    if by_segment is None or by_segment.empty:
        return out
    d = by_segment[by_segment["metric"] == metric]
    for camp, g in d.groupby("experiment", sort=True):
        g = g.dropna(subset=["abs_lift"]).sort_values("abs_lift", ascending=False)
        if len(g) < 2:
            continue
        b, w = g.iloc[0], g.iloc[-1]
        out.append(t("seg_row", lang, campaign=camp, best=segment_label(b["segment"], lang),
                     best_diff=metric_diff(metric, b["abs_lift"]), worst=segment_label(w["segment"], lang),
                     worst_diff=metric_diff(metric, w["abs_lift"])))
    return out


def summary_uplift(result, alpha: float, lang: str = "en", week: str = "", weeks: int = 1,
                   window_days: float | None = None) -> list[str]:
    """Stakeholder bullets for the weekly uplift report (a :class:`~crmlab.report.analyses.UpliftResult`)."""
    camp = result.campaigns
    out: list[str] = []
    if camp is None or camp.empty:
        if result.incomplete:
            out.append(t("upl_pending", lang, cut=num(result.incomplete), days=num(window_days, 0)))
        else:
            out.append(t("no_campaigns", lang, week=week, weeks=weeks))
    else:
        conv = camp[camp["metric"] == "conversion_rate"]
        revenue = camp[camp["metric"] == "revenue_per_user"]
        out.append(t("upl_total", lang, n=conv["experiment"].nunique(), week=week, weeks=weeks, conv=num(conv["incremental"].sum(), 0),
                     rev=money(revenue["incremental"].sum()) if not revenue.empty else "–"))
        best = conv.sort_values("abs_lift", ascending=False).iloc[0]
        out.append(t("upl_best", lang, campaign=best["experiment"], c=metric_value("conversion_rate", best["estimate_control"]),
                     t=metric_value("conversion_rate", best["estimate"]),
                     diff=metric_diff("conversion_rate", best["abs_lift"]), sure=sureness(best["p_value"], alpha, lang)))
        if not _nan(best.get("cost_per_incremental")) and best["abs_lift"] > 0:
            out.append(t("upl_cost", lang, campaign=best["experiment"], cost=money(best["cost_per_incremental"])))
        neg = conv[(conv["p_value"] < alpha) & (conv["abs_lift"] < 0)]
        for _, r in neg.iterrows():
            out.append(t("upl_negative", lang, campaign=r["experiment"], c=metric_value("conversion_rate", r["estimate_control"]),
                         t=metric_value("conversion_rate", r["estimate"]),
                         diff=metric_diff("conversion_rate", r["abs_lift"]), sure=sureness(r["p_value"], alpha, lang)))
        pos = conv[(conv["p_value"] < alpha) & (conv["abs_lift"] > 0)].sort_values("abs_lift", ascending=False)
        if not pos.empty:
            top = pos.iloc[0]["experiment"]
            where = ""
            seg = result.by_segment
            if seg is not None and not seg.empty:
                g = seg[(seg["metric"] == "conversion_rate") & (seg["experiment"] == top)].dropna(subset=["abs_lift"])
                # a segment is only named when its own comparison supports a verdict: a win
                # after the correction over the campaign's segments (Holm), never a small cell
                if "status" in g.columns:
                    g = g[(g["status"] == "ok") & _holm_significant(g["p_value"], alpha)]
                if len(g) >= 2:
                    where = t("upl_do_where", lang, segment=segment_label(g.sort_values("abs_lift").iloc[-1]["segment"], lang))
            out.append(t("upl_do_scale", lang, campaign=top, where=where))
        for _, r in neg.iterrows():
            out.append(t("upl_do_stop", lang, campaign=r["experiment"]))
        if pos.empty and neg.empty:
            out.append(t("upl_do_wait", lang))
    h = result.holdout
    if h is not None and not h.empty:
        r = h[h["metric"] == "conversion_rate"]
        if not r.empty:
            r = r.iloc[0]
            out.append(t("holdout_row", lang, metric=metric_name("conversion_rate", lang),
                         t=metric_value("conversion_rate", r["estimate"]),
                         c=metric_value("conversion_rate", r["estimate_control"]),
                         diff=metric_diff("conversion_rate", r["abs_lift"]), sure=sureness(r["p_value"], alpha, lang)))
    return out


# -- message performance --------------------------------------------------------------------
def moved(now: float, before: float, lang: str = "en", *, rate: bool = True) -> str:
    """'up 0.4 pp' / 'down ...' / 'unchanged' between two values (rates in percentage points)."""
    if _nan(now) or _nan(before):
        return "–"
    d = now - before
    if abs(d) < 5e-5:
        return t("moved_flat", lang)
    text = f"{abs(d) * 100:.1f} pp" if rate else num(abs(d), 2)
    return t("moved_up" if d > 0 else "moved_down", lang, d=text)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summary_messages(result, lang: str = "en", week: str = "") -> list[str]:
    """Stakeholder bullets for the weekly message report (a :class:`~crmlab.report.analyses.MessageResult`)."""
    w, prev = result.week, result.previous
    if w is None or w.empty:
        return [t("no_messages", lang, week=week)]
    sent, delivered = int(w["sent"].sum()), int(w["delivered"].sum())
    out = [t("msg_volume", lang, sent=num(sent), prev_sent=num(prev["sent"].sum() if prev is not None else 0),
             delivered=num(delivered), delivery=pct(_ratio(delivered, sent)))]
    click = _ratio(w["clicked"].sum(), delivered)
    conv = _ratio(w["converted"].sum(), delivered)
    out.append(t("msg_rates", lang, click=pct(click), conv=pct(conv), revenue=money(w["revenue"].sum())))
    if prev is not None and not prev.empty and prev["delivered"].sum():
        pd_ = prev["delivered"].sum()
        out.append(t("msg_moved", lang, click_move=moved(click, prev["clicked"].sum() / pd_, lang),
                     conv_move=moved(conv, prev["converted"].sum() / pd_, lang)))
    top = w.sort_values("revenue", ascending=False).iloc[0]
    out.append(t("msg_top", lang, campaign=top["campaign"], channel=top["channel"], revenue=money(top["revenue"]),
                 conv=pct(top["conversion_rate"])))
    out.append(t("msg_optout", lang, optouts=num(w["optouts"].sum()), rate=pct(_ratio(w["optouts"].sum(), delivered), 2)))
    comp = result.compliance
    bad = comp[comp["violations"] > 0] if comp is not None else None
    if bad is not None and not bad.empty:
        out.append(explain_compliance(comp, lang))
        out.append(t("comp_do", lang, rules=", ".join(bad["rule"].astype(str))))
    else:
        if comp is not None:
            out.append(t("comp_ok", lang))
        out.append(t("msg_do_ok", lang))
    return out


def explain_compliance(comp: pd.DataFrame, lang: str = "en") -> str:
    """How many messages broke a rule and which rule most often (ties: the first listed)."""
    if comp is None:
        return ""
    bad = comp[comp["violations"] > 0]
    if bad.empty:
        return t("comp_ok", lang)
    worst = bad.sort_values("violations", ascending=False, kind="stable").iloc[0]
    return t("comp_bad", lang, n=num(bad["violations"].sum()), rule=worst["rule"], k=num(worst["violations"]))


def explain_fatigue(fat: pd.DataFrame, lang: str = "en") -> str:
    """Opt-out rate of users with the most messages per week against users with one."""
    if fat is None or len(fat) < 2:
        return ""
    one = fat[fat["n_messages"] == 1]
    hi = fat[fat["n_messages"] >= 3]
    if one.empty or hi.empty:
        return ""
    r_hi = hi["optouts"].sum() / hi["user_periods"].sum()
    return t("fatigue_row", lang, hi=3, r_hi=pct(r_hi, 2), r_1=pct(float(one["optout_rate"].iloc[0]), 2))


def explain_sendtime(heat: pd.DataFrame, lang: str = "en", min_delivered: int = 30) -> str:
    if heat is None or heat.empty:
        return ""
    h = heat[heat["delivered"] >= min_delivered].dropna(subset=["click_rate"])
    if h.empty:
        return ""
    b = h.sort_values("click_rate", ascending=False).iloc[0]
    day = t("weekday_names", lang).split(",")[int(b["weekday"])]
    return t("sendtime_best", lang, day=day, hour=int(b["hour"]), rate=pct(b["click_rate"]), min=min_delivered)


def explain_copy(row: Mapping[str, Any], alpha: float, lang: str = "en") -> str:
    m = str(row["metric"])
    return t("copy_row", lang, campaign=row.get("campaign", ""), variant=row["variant"], control=row["control"],
             metric=metric_name(m, lang), value=pct(row["estimate"], 2), control_value=pct(row["estimate_control"], 2),
             rel=rel(row["rel_lift"]), sure=sureness(row["p_value"], alpha, lang))


# -- cohorts, RFM, CLV ----------------------------------------------------------------------
def segment_name(seg: str, lang: str = "en") -> str:
    """An RFM segment's name in ``lang``."""
    key = f"seg_{seg}"
    return t(key, lang) if key in TEXT[lang] else str(seg)


def segment_label(seg: str, lang: str = "en") -> str:
    """A segment's name in ``lang``: an RFM segment or a lifecycle stage; others unchanged."""
    for prefix in ("seg_", "stage_"):
        key = f"{prefix}{seg}"
        if key in TEXT[lang]:
            return t(key, lang)
    return str(seg)


def segment_by_name(kind: str, lang: str = "en") -> str:
    key = f"segby_{kind}"
    return t(key, lang) if key in TEXT[lang] else str(kind)


def period_name(period: str, lang: str = "en") -> str:
    return t(f"period_{period}", lang)


def summary_cohort_rfm(res, lang: str = "en", *, period: str = "W", repurchase_days: float = 30,
                       horizon_weeks: float = 12) -> list[str]:
    """Stakeholder bullets for the cohort/RFM/CLV report (a :class:`~crmlab.report.analyses.CohortResult`)."""
    out: list[str] = []
    pn = period_name(period, lang)
    avg = res.average
    if avg is not None and len(avg) > 1:
        k = int(min(4, avg["period_index"].max()))
        r1 = float(avg.loc[avg["period_index"] == 1, "weighted_share"].iloc[0])
        rk = float(avg.loc[avg["period_index"] == k, "weighted_share"].iloc[0])
        out.append(t("ret_avg", lang, r1=pct(r1), rk=pct(rk), k=k, period_name=pn))
        long = res.retention
        if long is not None:
            done = long[(long["period_index"] == 1) & long["complete"]]
            if not done.empty:
                last = done.sort_values("cohort").iloc[-1]
                d = float(last["share"]) - r1
                move = t("ret_same" if abs(d) < 0.005 else "ret_above" if d > 0 else "ret_below", lang)
                out.append(t("ret_latest", lang, cohort=pd.Timestamp(last["cohort"]).strftime("%Y-%m-%d"),
                             latest=pct(float(last["share"])), move=move, period_name=pn))
    rep = res.repurchase
    if rep is not None and not rep.empty:
        r = rep.iloc[0]
        out.append(t("rep_rate", lang, rate=pct(r["rate"]), days=f"{repurchase_days:g}", lo=pct(r["ci_low"]),
                     hi=pct(r["ci_high"])))
    seg = res.segments
    if seg is not None and not seg.empty and seg["customers"].sum():
        top = seg.sort_values("revenue_share", ascending=False).iloc[0]
        out.append(t("rfm_top", lang, segment=segment_name(top["segment"], lang), share=pct(top["share"]),
                     rev_share=pct(top["revenue_share"])))
        risk = seg[seg["segment"].astype(str).isin(["At Risk", "Can't Lose"])]
        risk = risk[risk["customers"] > 0]
        if not risk.empty:
            rk_ = risk.sort_values("revenue", ascending=False).iloc[0]
            out.append(t("rfm_risk", lang, segment=segment_name(rk_["segment"], lang), n=num(rk_["customers"]),
                         share=pct(rk_["share"]), days=num(rk_["recency_mean"])))
    val = res.value
    if val is not None and not val.empty and not _nan(res.value_total):
        v = val.sort_values("value_share", ascending=False).iloc[0]
        out.append(t("clv_total", lang, total=money(res.value_total), h=f"{horizon_weeks:g}",
                     segment=segment_name(v["segment"], lang), share=pct(v["value_share"])))
    if seg is not None and not seg.empty:
        risk = seg[seg["segment"].astype(str).isin(["At Risk", "Can't Lose"]) & (seg["customers"] > 0)]
        if not risk.empty:
            rk_ = risk.sort_values("revenue", ascending=False).iloc[0]
            top = seg.sort_values("revenue_share", ascending=False).iloc[0]
            out.append(t("rfm_do", lang, segment=segment_name(rk_["segment"], lang), n=num(rk_["customers"]),
                         top=segment_name(top["segment"], lang)))
    return out


def explain_second(second: pd.DataFrame, lang: str = "en") -> str:
    if second is None or second.empty:
        return ""
    s = second.iloc[0]
    if _nan(s.get("km_median_days")):
        return t("second_time_nokm", lang, median=num(s["median_days"], 0))
    return t("second_time", lang, median=num(s["median_days"], 0), km=num(s["km_median_days"], 0))


# -- funnel ---------------------------------------------------------------------------------
def step_name(step: str, lang: str = "en") -> str:
    key = f"step_{step}"
    return t(key, lang) if key in TEXT[lang] else str(step).replace("_", " ")


def behaviour_name(seg: str, lang: str = "en") -> str:
    key = f"beh_{seg}"
    return t(key, lang) if key in TEXT[lang] else str(seg).replace("_", " ")


def explain_steps(steps: pd.DataFrame, lang: str = "en") -> list[str]:
    out = [t("funnel_row", lang, step=step_name(r["step"], lang), n=num(r["sessions"]), start=pct(r["from_start"]),
             prev=pct(r["from_previous"]) if not _nan(r["from_previous"]) else "–")
           for r in steps.to_dict("records")]
    return out


def biggest_drop(steps: pd.DataFrame, lang: str = "en") -> str:
    s = steps.dropna(subset=["from_previous"])
    if s.empty:
        return ""
    i = s["from_previous"].idxmin()
    a = steps.loc[i - 1, "step"] if i - 1 in steps.index else steps.iloc[0]["step"]
    return t("funnel_drop", lang, a=step_name(a, lang), b=step_name(steps.loc[i, "step"], lang),
             rate=pct(steps.loc[i, "from_previous"]))


def explain_device(by_device: pd.DataFrame, lang: str = "en", by: str = "device") -> str:
    if by_device is None or len(by_device) < 2:
        return ""
    d = by_device.dropna(subset=["conversion_rate_per_session"]).sort_values("conversion_rate_per_session")
    if len(d) < 2:
        return ""
    return t("device_best", lang, best=d.iloc[-1][by], best_rate=pct(d.iloc[-1]["conversion_rate_per_session"]),
             worst=d.iloc[0][by], worst_rate=pct(d.iloc[0]["conversion_rate_per_session"]))


def summary_funnel(res, lang: str = "en", week: str = "") -> list[str]:
    """Stakeholder bullets for the funnel report (a :class:`~crmlab.report.analyses.FunnelResult`)."""
    w, p = res.week, res.previous
    if w is None:
        return [t("no_data_week", lang, what="events", week=week, first="–", last="–")]
    out = [t("kpi_sessions", lang, sessions=num(w["sessions"]), visitors=num(w["visitors"]),
             move=rel(w["sessions"] / p["sessions"] - 1) if p is not None and p["sessions"] else "–")]
    if p is not None:
        conv_move = moved(w["conversion_rate_per_session"], p["conversion_rate_per_session"], lang)
    else:
        conv_move = "–"
    out.append(t("kpi_conv", lang, conv=pct(w["conversion_rate_per_session"]), move=conv_move,
                 aov=money(w["average_order_value"])))
    if res.steps is not None:
        out.append(biggest_drop(res.steps, lang))
    if res.by_device is not None:
        out.append(explain_device(res.by_device, lang))
    b = res.behaviour
    if b is not None and not b.empty:
        ab = int(b.loc[b["segment"].str.startswith("abandoned"), "users"].sum())
        ex = int(b.loc[b["segment"] == "explorers", "users"].sum())
        out.append(t("funnel_do", lang, n=num(ab), m=num(ex)))
    elif res.steps is not None:
        s = res.steps.dropna(subset=["from_previous"])
        if not s.empty:
            out.append(t("funnel_do_plain", lang, a=step_name(s.loc[s["from_previous"].idxmin(), "step"], lang)))
    return [x for x in out if x]


def explain_ordered(ordered: pd.DataFrame, lang: str = "en", hours: float = 24) -> list[str]:
    """Sentences for a :func:`crmlab.funnel.funnel` result (without ``by``)."""
    if ordered is None or ordered.empty:
        return []
    first, last = ordered.iloc[0], ordered.iloc[-1]
    out = [t("ordered_row", lang, n=num(first["users"]), first=step_name(first["step_name"], lang),
             last=step_name(last["step_name"], lang), rate=pct(last["conversion_from_start"]), hours=f"{hours:g}")]
    rest = ordered.iloc[1:]
    if not rest.empty:
        w = rest.loc[rest["drop_off"].idxmax()]
        prev = ordered.loc[ordered["step"] == w["step"] - 1].iloc[0]
        out.append(t("ordered_drop", lang, a=step_name(prev["step_name"], lang), b=step_name(w["step_name"], lang),
                     drop=num(w["drop_off"]), rate=pct(1 - w["conversion_from_previous"])))
    return out


def explain_groups(test: pd.DataFrame, alpha: float = 0.05, lang: str = "en") -> str:
    """Whether step conversion differs between groups (:func:`crmlab.funnel.compare_groups`)."""
    if test is None or test.empty:
        return ""
    col = "p_adjusted" if "p_adjusted" in test.columns else "p_value"
    sig = test[test[col] < alpha]
    if sig.empty:
        return t("groups_same", lang, p=pval(test[col].min()))
    r = sig.sort_values(col).iloc[0]
    return t("groups_diff", lang, step=step_name(r["step_name"], lang), min=pct(r["min_rate"]), max=pct(r["max_rate"]),
             p=p_eq(r[col]))


def explain_ttc(ttc: pd.DataFrame, first: str, lang: str = "en") -> str:
    if ttc is None or ttc.empty:
        return ""
    last = ttc.iloc[-1]
    return t("ttc_row", lang, m=num(last["median_seconds"] / 60, 0), first=step_name(first, lang),
             last=step_name(last["step_name"], lang))
